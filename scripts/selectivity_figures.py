"""Snakemake adapter: layer x target-level heatmap and per-unit distributions (rule selectivity_figures)."""

from speechneurons import provenance
from speechneurons.cache import units_matrix
from speechneurons.datasets import corpus_spec
from speechneurons.figures import plot_selectivity_heatmap, plot_unit_distributions, save_figure, unit_label
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.questions import best_unit_values
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
record = provenance.build(sm.rule, sm.params, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards)
metadata = provenance.png_metadata(record)

spec = corpus_spec(sm.params.corpus)
selectivity = read_parquet(sm.input.selectivity)
selected = read_parquet(sm.input.selected)
save_figure(plot_selectivity_heatmap(selectivity, selected, spec), sm.output.heatmap, metadata)

matrix = units_matrix(sm.input.activations, sm.params.statistic, selected)
values = best_unit_values(selected, matrix, read_parquet(sm.input.clips), unit_label, spec)
figure = plot_unit_distributions(values, spec, f"pooled {sm.params.statistic} activation per clip")
save_figure(figure, sm.output.distributions, metadata)
