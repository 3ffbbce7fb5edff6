"""Snakemake adapter: layer x emotion heatmap and per-unit emotion distributions (rule selectivity_figures)."""

import json

import pandas as pd

from speechneurons import provenance
from speechneurons.activations import activation_matrix
from speechneurons.figures import plot_selectivity_heatmap, plot_unit_distributions, save_figure, unit_label
from speechneurons.logs import log_to_file
from speechneurons.questions import best_unit_values

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards)
metadata = {"Software": "speechneurons", "Description": json.dumps(record, sort_keys=True)}

selectivity = pd.read_parquet(sm.input.selectivity)
selected = pd.read_parquet(sm.input.selected)
save_figure(plot_selectivity_heatmap(selectivity, selected), sm.output.heatmap, metadata)

matrix = activation_matrix(sm.input.activations, sm.params.statistic)
values = best_unit_values(selected, matrix, pd.read_parquet(sm.input.clips), unit_label)
figure = plot_unit_distributions(values, f"pooled {sm.params.statistic} activation per clip")
save_figure(figure, sm.output.distributions, metadata)
