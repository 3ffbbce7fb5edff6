"""Snakemake adapter: the sparse autoencoder of one layer, its quality and seed stability (rule sae_train)."""

import pandas as pd

from speechneurons import provenance
from speechneurons.datasets import corpus_spec
from speechneurons.logs import log_to_file
from speechneurons.sae_site import sae_device
from speechneurons.sae import (QUALITY_COLUMNS, SAESettings, UntrainableLayer, read_layer_frames, save_sae,
                               save_untrained, train_layer)
from speechneurons.threads import pin_threads
from speechneurons.integrity import read_parquet

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
pin_threads(sm.params.threads)  # compute.threads, whatever --cores

p = sm.params
layer = int(sm.wildcards.sae_layer)
settings = SAESettings.from_config(p.sae)
frames = read_layer_frames(sm.input.frames, p.site, layer)
model = provenance.upstream_model(sm.input.failed)
try:
    sae, quality, record = train_layer(frames, read_parquet(sm.input.clips), corpus_spec(p.corpus).group, p.site,
                                       layer, settings, device=sae_device(p.device))
except UntrainableLayer as why:  # a thin design: no SAE, and the report says why
    job = provenance.build(sm.rule, p, model, wildcards=sm.wildcards, notes=[str(why)])
    save_untrained(sm.output.sae, str(why), job)
    provenance.write_table(pd.DataFrame(columns=QUALITY_COLUMNS), sm.output.quality, job)
else:
    job = provenance.build(sm.rule, p, model, wildcards=sm.wildcards)
    save_sae(sae, sm.output.sae, {**job, "training": record})
    provenance.write_table(quality, sm.output.quality, job)
