"""Snakemake adapter: the sparse autoencoder of one layer, its quality and seed stability (rule sae_train)."""

import pandas as pd

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.sae import SAESettings, read_layer_frames, save_sae, train_layer, training_device
from speechneurons.threads import pin_threads

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.threads)

p = sm.params
layer = int(sm.wildcards.sae_layer)
settings = SAESettings.from_config(p.sae)
frames = read_layer_frames(sm.input.frames, p.site, layer)
sae, quality, record = train_layer(frames, pd.read_parquet(sm.input.clips), corpus_spec(p.corpus).group, p.site,
                                   layer, settings, device=training_device(p.device))
job = provenance.build(sm.rule, p, provenance.upstream_model(sm.input.failed), wildcards=sm.wildcards)
save_sae(sae, sm.output.sae, {**job, "training": record})
provenance.write_table(quality, sm.output.quality, job)
