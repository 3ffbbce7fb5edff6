"""Snakemake adapter: the per-clip attribution figure and the target-level comparison (rule figures)."""

from pathlib import Path

import pandas as pd

from speechneurons.ablation.store import read_attributions
from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.figures import (
    choose_example,
    clip_caption,
    clip_figure_units,
    plot_clip_attribution,
    plot_level_comparison,
    save_figure,
    unit_label,
)
from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.schemas import UNIT, unit_rows

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params
record = provenance.build(sm.rule, p, provenance.upstream_model([sm.input.clip_units]), wildcards=sm.wildcards)
png_metadata = provenance.png_metadata(record)

spec = corpus_spec(p.corpus)
clips = pd.read_parquet(sm.input.clips).set_index("clip_id")
clip_units = pd.read_parquet(sm.input.clip_units)
clip_id, site, layer, neuron = choose_example(clip_units, p.figures["clip_id"], p.figures["layer"],
                                             p.figures["neuron"], p.figures["site"])
# the example unit, and the two strongest top units of the clip's target level beside it
clip = clips.loc[clip_id]
selected = pd.read_parquet(sm.input.selected)
units = clip_figure_units(selected, site, layer, neuron, spec.target, clip[spec.target])
long = read_attributions(sm.input.attributions, sm.input.segments, [clip_id], units)
curves = {unit_label(*u): unit_rows(long, *u).sort_values("segment") for u in units[UNIT].itertuples(index=False)}
wave = load_waveform(Path(p.root) / clip["path"])
title = f"{clip_id} ({clip_caption(clip, spec)})"
save_figure(plot_clip_attribution(wave, MODEL_SAMPLE_RATE, curves, title), sm.output.clip, png_metadata)

levels = plot_level_comparison(unit_rows(clip_units, site, layer, neuron), spec, unit_label(site, layer, neuron))
save_figure(levels, sm.output.levels, png_metadata)
