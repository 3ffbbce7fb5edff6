"""Snakemake adapter: the unit browser page of one parameter combination (rule unit_browser)."""

from pathlib import Path

import pandas as pd

from speechneurons.browser import unit_browser
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.prosody import ProsodyTracks
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
# probes and knock-out where the config runs them (else the page shows selectivity only)
optional = {name: read_parquet(getattr(sm.input, name)) if name in sm.input.keys() else pd.DataFrame()
            for name in ("probes", "knockout")}
page = unit_browser(
    clips=read_parquet(sm.input.clips).set_index("clip_id"),
    selected=read_parquet(sm.input.selected),
    selectivity=read_parquet(sm.input.selectivity),
    **optional,
    activations=sm.input.activations,
    attributions=sm.input.attributions,
    segments=sm.input.segments,
    browser=sm.params.browser,
    spec=corpus_spec(sm.params.corpus),
    root=sm.params.root,
    combination=", ".join(f"{k} {v}" for k, v in sm.wildcards.items()),
    prosody=ProsodyTracks.read(sm.input.prosody),
)
Path(sm.output[0]).write_text(page)
