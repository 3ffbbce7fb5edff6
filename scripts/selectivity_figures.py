"""Snakemake adapter: layer x emotion heatmap and per-unit emotion distributions (rule selectivity_figures)."""

import json

import pandas as pd

from speechneurons import provenance
from speechneurons.activations import activation_matrix
from speechneurons.figures import plot_selectivity_heatmap, plot_unit_distributions, save_figure, unit_label
from speechneurons.logs import log_to_file

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards)
metadata = {"Software": "speechneurons", "Description": json.dumps(record, sort_keys=True)}

selectivity = pd.read_parquet(sm.input.selectivity)
selected = pd.read_parquet(sm.input.selected)
save_figure(plot_selectivity_heatmap(selectivity, selected), sm.output.heatmap, metadata)

# the strongest top unit of each emotion: its pooled activation per clip, by emotion
best = (selected[selected["reason"] == "top_k"].sort_values("score", ascending=False)
        .groupby("emotion", sort=False).head(1))
matrix = activation_matrix(sm.input.activations, sm.params.statistic)
clips = pd.read_parquet(sm.input.clips).set_index("clip_id").loc[matrix.clip_ids]
parts = []
for row in best.itertuples(index=False):
    column = matrix.units.index[(matrix.units.site == row.site) & (matrix.units.layer == row.layer)
                                & (matrix.units.neuron == row.neuron)][0]
    parts.append(pd.DataFrame({
        "unit": f"{unit_label(row.site, row.layer, row.neuron)} (top for {row.emotion})",
        "emotion": clips["emotion"].to_numpy(), "gender": clips["gender"].to_numpy(),
        "value": matrix.values[:, column]}))
figure = plot_unit_distributions(pd.concat(parts, ignore_index=True),
                                 f"pooled {sm.params.statistic} activation per clip")
save_figure(figure, sm.output.distributions, metadata)
