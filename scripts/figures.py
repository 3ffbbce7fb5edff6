"""Snakemake adapter: the per-clip attribution figure and the emotion comparison (rule figures)."""

import json
from pathlib import Path

import pandas as pd

from speechneurons.ablation.store import read_attributions
from speechneurons.audio import load_waveform
from speechneurons.figures import (
    choose_example,
    plot_clip_attribution,
    plot_emotion_comparison,
    unit_label,
)
from speechneurons import provenance
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params
record = provenance.build(sm.rule, p, provenance.upstream_model([sm.input.clip_units]), wildcards=sm.wildcards)
png_metadata = {"Software": "speechneurons", "Description": json.dumps(record, sort_keys=True)}

clips = pd.read_parquet(sm.input.clips).set_index("clip_id")
clip_units = pd.read_parquet(sm.input.clip_units)
clip_id, site, layer, neuron = choose_example(clip_units, p.clip_id, p.layer, p.neuron, p.site)
unit = pd.DataFrame({"site": [site], "layer": [layer], "neuron": [neuron]})
curve = read_attributions(sm.input.attributions, sm.input.segments, [clip_id], unit)
clip = clips.loc[clip_id]
wave = load_waveform(Path(p.root) / clip["path"])
title = f"{clip_id} ({clip['emotion']}, {clip['intensity']}, {clip['gender']}): {unit_label(site, layer, neuron)}"
plot_clip_attribution(wave, 16_000, curve, title).savefig(sm.output.clip, dpi=120,
                                                         metadata=png_metadata)

unit_rows = clip_units[(clip_units["site"] == site) & (clip_units["layer"] == layer)
                       & (clip_units["neuron"] == neuron)]
plot_emotion_comparison(unit_rows, unit_label(site, layer, neuron)).savefig(
    sm.output.emotions, dpi=120, metadata=png_metadata)
