"""Snakemake adapter: segment ablation of one shard for one parameter combination (rule ablation)."""

from speechneurons import provenance
from speechneurons.ablation.run import AblationSettings, ablate_clips
from speechneurons.unit_arrays import write_unit_arrays
from speechneurons.logs import log_to_file
from speechneurons.threads import pin_threads
from speechneurons.models import load_speech_model
from speechneurons.sae_site import attach_saes
from speechneurons.shards import shard_clips
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores

p = sm.params
clips = shard_clips(read_parquet(sm.input.clips), p.shard, p.compute["shards"])
model = load_speech_model(p.model, p.revision, p.compute["device"])
if p.sae:  # the sae site: latents of each layer's SAE
    attach_saes(model, p.sae["site"], p.sae["layers"], sm.input.saes)
settings = AblationSettings.from_config(p.ablation, dict(sm.wildcards.items()), p.compute["perturbations_per_eval"],
                                        sm.input.units)
result = ablate_clips(model, clips, p.root, settings)
record = provenance.build(sm.rule, p, provenance.model_record(p.model, p.revision), wildcards=sm.wildcards)
write_unit_arrays(sm.output.attributions, result.curves, result.units, p.storage_dtype, record)
provenance.write_table(result.segments, sm.output.segments, record)
provenance.write_table(result.summary, sm.output.summary, record)
provenance.write_table(result.failed, sm.output.failed, record)
