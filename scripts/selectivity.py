"""Snakemake adapter: selectivity statistics of every cached unit (rule selectivity)."""

from speechneurons import provenance
from speechneurons.cache import ActivationCache
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.stats.selectivity import BYTES_PER_VALUE, StatsSettings, reserved_gib, selectivity
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores
p = sm.params

stats = dict(p.stats)
cache = ActivationCache(sm.input.activations, stats.pop("activation"))
settings = StatsSettings.from_config(stats)
spec = corpus_spec(p.corpus)
# blocks of units that fit the job's memory (compute.memory_gib), spilled to $TMPDIR when the cache does not
with cache.blocks(BYTES_PER_VALUE, sm.resources.mem_mb / 1024, reserved_gib(len(cache.units), len(spec.factor_names))) as source:
    table, notes = selectivity(source, read_parquet(sm.input.clips), spec, settings)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations), wildcards=sm.wildcards,
                          notes=notes)
provenance.write_table(table, sm.output.selectivity, record)
