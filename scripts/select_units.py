"""Snakemake adapter: the units to ablate, and why each was chosen (rule select_units)."""

import logging

import pandas as pd

from speechneurons.cache import activation_matrix
from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.stats.selection import SelectionSettings, select_units

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params

settings = SelectionSettings.from_config(p.selection, fdr_alpha=p.stats["fdr_alpha"],
                                         permutations=p.stats["permutations"])
chosen, notes = select_units(activation_matrix(sm.input.activations, p.stats["activation"]),
                             pd.read_parquet(sm.input.clips), pd.read_parquet(sm.input.selectivity),
                             corpus_spec(p.corpus), settings)
for note in notes:
    logging.getLogger("select_units").warning(note)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(chosen, sm.output[0], record)
