"""Snakemake adapter: the layer's neurons against its SAE's latents, side by side (rule neurons_vs_features)."""

import pandas as pd

from speechneurons import provenance
from speechneurons.cache import units_matrix
from speechneurons.datasets import corpus_spec
from speechneurons.figures import save_figure
from speechneurons.logs import log_to_file
from speechneurons.neurons_vs_features import neurons_vs_features, plot_neurons_vs_features
from speechneurons.probes import ProbeSettings
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores
p = sm.params
selectivity = read_parquet(sm.input.selectivity)
# only the compared layers' units: the layer's own and its latents
units = selectivity.loc[selectivity["site"].isin([p.sae["site"], "sae"]) & selectivity["layer"].isin(p.sae["layers"]),
                        ["site", "layer", "neuron"]]
matrix = units_matrix(sm.input.activations, p.activation, units)  # the statistic selectivity tested
knockout = read_parquet(sm.input.knockout) if "knockout" in sm.input.keys() else pd.DataFrame()
settings = ProbeSettings.from_config(p.probes, permutations=0)
table, notes = neurons_vs_features(matrix, read_parquet(sm.input.clips), selectivity, knockout,
                                   corpus_spec(p.corpus), p.sae["site"], p.sae["layers"], p.sae["compare_top_k"],
                                   settings)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(table, sm.output.table, record)
save_figure(plot_neurons_vs_features(table), sm.output.figure, provenance.png_metadata(record))
