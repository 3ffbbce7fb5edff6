"""Snakemake adapter: pooled activations with each unit set knocked out, one shard (rule knockout_activations)."""

from speechneurons.cache import activation_matrix
from speechneurons.datasets import corpus_spec
from speechneurons.knockout.forward import knocked_activations
from speechneurons.knockout.sets import KnockoutSettings, knockout_sets
from speechneurons.knockout.store import write_knocked
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
matrix = activation_matrix(sm.input.activations, "mean", sites=p.knockout_sites)  # hidden units, SAE latents
sets = knockout_sets(read_parquet(sm.input.selected), matrix, corpus_spec(p.corpus),
                     KnockoutSettings.from_config(p.knockout), tuple(p.knockout_sites))
clips = shard_clips(read_parquet(sm.input.clips), p.shard, p.compute["shards"]).sort_values("clip_id")
clips = clips[clips["clip_id"].isin(matrix.clip_ids)]  # a clip that failed in the cache has no baseline
knocked = {}
if len(sets) and len(clips):
    model = load_speech_model(p.model, p.revision, p.compute["device"])
    if p.sae:  # the sae site: latents of each layer's SAE
        attach_saes(model, p.sae["site"], p.sae["layers"], sm.input.saes)
    knocked = knocked_activations(model, clips, p.root, sets, p.compute["perturbations_per_eval"])
write_knocked(sm.output[0], knocked, clips, sets)
