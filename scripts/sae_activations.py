"""Snakemake adapter: one shard's SAE latents, pooled, from its stored frames (rule sae_activations)."""

from speechneurons import provenance
from speechneurons.logs import log_to_file
from speechneurons.sae_latents import pooled_latents
from speechneurons.sae_site import sae_device
from speechneurons.schemas import ACTIVATION_SCHEMA, empty_table
from speechneurons.threads import pin_threads

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores

p = sm.params
# the model whose frames these are: the record of the frames job's table
record = provenance.build(sm.rule, p, provenance.upstream_model([sm.input.frames_failed]), wildcards=sm.wildcards)
# each clip's rows are written as they come: memory does not grow with the shard
with provenance.table_writer(sm.output.pooled, record, empty_table(ACTIVATION_SCHEMA)) as write:
    pooled_latents(sm.input.frames, p.sae["site"], p.sae["layers"], sm.input.saes, sae_device(p.device), sink=write)
