"""Snakemake adapter: the units to ablate, and why each was chosen (rule select_units)."""

import logging

from speechneurons.cache import ActivationCache
from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.stats.selection import BYTES_PER_VALUE, SelectionSettings, select_units
from speechneurons.stats.selectivity import reserved_gib
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params

settings = SelectionSettings.from_config(p.selection, fdr_alpha=p.stats["fdr_alpha"],
                                         permutations=p.stats["permutations"],
                                         min_clips_per_cell=p.stats["min_clips_per_cell"])
cache = ActivationCache(sm.input.activations, p.stats["activation"])
spec = corpus_spec(p.corpus)
# blocks of units that fit the job's memory (compute.memory_gib), spilled to $TMPDIR when the cache does not
with cache.blocks(BYTES_PER_VALUE, sm.resources.mem_mb / 1024, reserved_gib(len(cache.units), len(spec.factor_names))) as source:
    chosen, replication, notes = select_units(source, read_parquet(sm.input.clips), read_parquet(sm.input.selectivity),
                                 spec, settings)
for note in notes:
    logging.getLogger("select_units").warning(note)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(chosen, sm.output.units, record)
provenance.write_table(replication, sm.output.replication, record)
