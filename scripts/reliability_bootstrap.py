"""Snakemake adapter: stability of the selected units over speakers (rule reliability_bootstrap)."""

from speechneurons import provenance
from speechneurons.cache import ActivationCache
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.reliability.bootstrap import BootstrapSettings, bootstrap_blocks, speaker_bootstrap
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)
p = sm.params
spec = corpus_spec(p.corpus)
selected = read_parquet(sm.input.selected)
# the sites of the selected units (every site when nothing was selected: the table then says so)
cache = ActivationCache(sm.input.activations, p.statistic, sites=sorted(selected["site"].unique()) or None)
with bootstrap_blocks(cache, sm.resources.mem_mb / 1024) as source:  # a layer at a time, within compute.memory_gib
    units, layers, notes = speaker_bootstrap(source, read_parquet(sm.input.clips), selected, spec,
                                             BootstrapSettings.from_config(p.bootstrap, top_k=p.top_k, seed=p.seed))
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards, notes=notes)
provenance.write_table(units, sm.output.units, record)
provenance.write_table(layers, sm.output.layers, record)
