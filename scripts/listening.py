"""Snakemake adapter: one HTML page per chosen clip with audio and attribution (rule listening)."""

from pathlib import Path

from speechneurons.datasets import corpus_spec
from speechneurons.listen import example_listening_page
from speechneurons.logs import log_to_file
from speechneurons.prosody import ProsodyTracks
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
page = example_listening_page(
    clips=read_parquet(sm.input.clips).set_index("clip_id"),
    clip_units=read_parquet(sm.input.clip_units),
    attributions=sm.input.attributions,
    segments=sm.input.segments,
    figures=sm.params.figures,
    spec=corpus_spec(sm.params.corpus),
    root=sm.params.root,
    combination=", ".join(f"{k} {v}" for k, v in sm.wildcards.items()),
    prosody=ProsodyTracks.read(sm.input.prosody),
)
Path(sm.output[0]).write_text(page)
