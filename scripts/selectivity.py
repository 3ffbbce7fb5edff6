"""Snakemake adapter: selectivity statistics of every cached unit (rule selectivity)."""

import pandas as pd

from speechneurons.cache import activation_matrix
from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.stats.selectivity import StatsSettings, selectivity

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params

stats = dict(p.stats)
matrix = activation_matrix(sm.input.activations, stats.pop("activation"))
settings = StatsSettings.from_config(stats)
spec = corpus_spec(p.corpus)
table, replication, notes = selectivity(matrix, pd.read_parquet(sm.input.clips), spec, settings)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(table, sm.output.selectivity, record)
provenance.write_table(replication, sm.output.replication, record)
