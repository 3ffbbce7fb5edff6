"""Snakemake adapter: selectivity statistics of every cached unit (rule selectivity)."""

import pandas as pd

from speechneurons.cache import activation_matrix
from speechneurons import provenance
from speechneurons.datasets import load_corpus
from speechneurons.logs import log_to_file
from speechneurons.stats.selectivity import StatsSettings, selectivity

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params

matrix = activation_matrix(sm.input.activations, p.statistic)
settings = StatsSettings(permutations=p.permutations, fdr_alpha=p.fdr_alpha, seed=p.seed,
                         mixed_top_units=p.mixed_top_units, replication_top=p.replication_top)
spec = load_corpus(p.corpus["name"], p.corpus["manifest"]).spec
table, replication, notes = selectivity(matrix, pd.read_parquet(sm.input.clips), spec, settings)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(table, sm.output.selectivity, record)
provenance.write_table(replication, sm.output.replication, record)
