"""Snakemake adapter: the units to ablate, and why each was chosen (rule select_units)."""

import logging

import pandas as pd

from speechneurons.cache import activation_matrix
from speechneurons import provenance
from speechneurons.datasets import load_corpus
from speechneurons.logs import log_to_file
from speechneurons.stats.selection import SelectionSettings, select_units

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
p = sm.params

settings = SelectionSettings(top_k=p.top_k, explicit=list(p.explicit), random_controls=p.random_controls,
                             seed=p.seed, folds=p.folds, require_selective=p.require_selective,
                             fdr_alpha=p.fdr_alpha, permutations=p.permutations)
chosen, notes = select_units(activation_matrix(sm.input.activations, p.statistic),
                             pd.read_parquet(sm.input.clips), pd.read_parquet(sm.input.selectivity),
                             load_corpus(p.corpus["name"], p.corpus["manifest"]).spec, settings)
for note in notes:
    logging.getLogger("select_units").warning(note)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(chosen, sm.output[0], record)
