"""Snakemake adapter: the unit browser page of one parameter combination (rule unit_browser)."""

from pathlib import Path

import pandas as pd

from speechneurons.ablation.store import read_attributions
from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.browser import (browser_page, browser_units, factor_panels, top_clips,
                                   unit_article, unit_numbers)
from speechneurons.cache import activation_matrix
from speechneurons.datasets import corpus_spec
from speechneurons.datasets.spec import SPEAKER
from speechneurons.figures import clip_caption, unit_label
from speechneurons.listen import clip_section
from speechneurons.logs import log_to_file
from speechneurons.schemas import unit_rows

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params
spec = corpus_spec(p.corpus)
clips = pd.read_parquet(sm.input.clips).set_index("clip_id")
units = browser_units(pd.read_parquet(sm.input.selected), spec, p.browser["units"])
selectivity = pd.read_parquet(sm.input.selectivity)
# probes and knock-out where the config runs them (else the page shows selectivity only)
probes = pd.read_parquet(sm.input.probes) if "probes" in sm.input.keys() else pd.DataFrame()
knockout = pd.read_parquet(sm.input.knockout) if "knockout" in sm.input.keys() else pd.DataFrame()
articles = []
if len(units):  # no top unit (a target factor with one level): the page says so
    matrix = activation_matrix(sm.input.activations, "mean", sites=units["site"].unique())
    meta = clips.loc[matrix.clip_ids]
    chosen = {tuple(u): top_clips(matrix, *u, p.browser["clips_per_unit"])
              for u in units[["site", "layer", "neuron"]].itertuples(index=False)}
    curves = read_attributions(sm.input.attributions, sm.input.segments,
                               sorted({c for ids in chosen.values() for c in ids}),
                               units[["site", "layer", "neuron"]])
for _, unit in units.iterrows():
    key = (unit["site"], int(unit["layer"]), int(unit["neuron"]))
    label = unit_label(*key)
    panels = factor_panels(matrix.values[:, matrix.column(*key)], meta, spec, f"{label}: activation by factor")
    sections = []
    for clip_id in chosen[key]:
        clip = clips.loc[clip_id]
        curve = unit_rows(curves[curves["clip_id"] == clip_id], *key).sort_values("segment")
        title = f"{clip_id}: {clip_caption(clip, spec)} ({SPEAKER} {clip[SPEAKER]})"
        sections.append(clip_section(title, load_waveform(Path(p.root) / clip["path"]), MODEL_SAMPLE_RATE, curve))
    articles.append(unit_article(label, unit_numbers(unit, spec, selectivity, probes, knockout), panels, sections))
combo = ", ".join(f"{k} {v}" for k, v in sm.wildcards.items())
Path(sm.output[0]).write_text(browser_page(
    f"Unit browser: {len(units)} selected units", f"The strongest top units for {spec.target} ({combo}): "
    "activation by factor, selectivity, probe and knock-out numbers of the unit's layer, and the clips "
    "on which it is most active with their attribution curves.", articles))
