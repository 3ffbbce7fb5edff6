"""Snakemake adapter: speaker-held-out probes per (site, layer) and factor (rule probes)."""

from speechneurons import provenance
from speechneurons.cache import ActivationCache
from speechneurons.datasets import corpus_spec
from speechneurons.figures import plot_probes, save_figure
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.probes import ProbeSettings, layer_probes, probe_blocks
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores
p = sm.params
spec = corpus_spec(p.corpus)
settings = ProbeSettings.from_config(p.probes)
clips = read_parquet(sm.input.clips)
cache = ActivationCache(sm.input.activations, "mean", sites=p.sites)
# a layer at a time, from blocks that fit the job's memory (compute.memory_gib)
with probe_blocks(cache, clips, sm.resources.mem_mb / 1024) as source:
    table, notes = layer_probes(source, clips, spec, settings)
record = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.activations),
                          wildcards=sm.wildcards, notes=notes)
provenance.write_table(table, sm.output.table, record)
metadata = provenance.png_metadata(record)
save_figure(plot_probes(table), sm.output.figure, metadata)
