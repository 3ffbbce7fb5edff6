"""Snakemake adapter: one shard's frame-level activations of the layers the SAEs learn (rule sae_frames)."""

from speechneurons import provenance
from speechneurons.logs import log_to_file
from speechneurons.models import load_speech_model
from speechneurons.activations import layer_frames
from speechneurons.shards import shard_clips
from speechneurons.threads import pin_threads
from speechneurons.unit_arrays import write_unit_arrays
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores

p = sm.params
clips = shard_clips(read_parquet(sm.input.clips), p.shard, p.compute["shards"])
model = load_speech_model(p.model, p.revision, p.compute["device"])
record = provenance.build(sm.rule, p, provenance.model_record(p.model, p.revision), wildcards=sm.wildcards)
frames, units, failed = layer_frames(model, clips, p.root, p.sae["site"], p.sae["layers"])
# [units, frames] float32 per clip: the SAE learns from them and the cache's latents are their codes
# (speechneurons.sae_latents), equal to the codes of the forward pass's frames
write_unit_arrays(sm.output.frames, frames, units, dtype="float32", provenance=record)
provenance.write_table(failed, sm.output.failed, record)
