"""Snakemake adapter: the activation cache for one shard of clips (rule activations)."""

from speechneurons import provenance
from speechneurons.activations import pooled_activations
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.models import load_speech_model
from speechneurons.schemas import ACTIVATION_SCHEMA, empty_table
from speechneurons.shards import shard_clips
from speechneurons.unit_arrays import write_unit_arrays
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores

p = sm.params
clips = shard_clips(read_parquet(sm.input.clips), p.shard, p.compute["shards"])
model = load_speech_model(p.model, p.revision, p.compute["device"])
record = provenance.build(sm.rule, p, provenance.model_record(p.model, p.revision), wildcards=sm.wildcards)
# each clip's rows are written as they come: memory does not grow with the shard
with provenance.table_writer(sm.output.pooled, record, empty_table(ACTIVATION_SCHEMA)) as write:
    # the sae site's latents are pooled by their own job (rule sae_activations)
    shard = pooled_activations(model, clips, p.root, p.activations["sites"], keep_frames=p.activations["frames"],
                               sink=write)
provenance.write_table(shard.failed, sm.output.failed, record)
if p.activations["frames"]:  # [units, frames] per clip, float16
    write_unit_arrays(sm.output.frames, {c: a.T for c, a in shard.frames.items()}, shard.units,
                      provenance=record)
