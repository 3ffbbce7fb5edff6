"""Snakemake adapter: pooled hidden activations of one shard of clips (rule activations)."""

import pandas as pd
import torch

from speechneurons.activations import pooled_activations
from speechneurons.logs import log_to_file
from speechneurons.models import load_speech_model
from speechneurons.shards import shard_clips

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
torch.set_num_threads(sm.threads)

clips = shard_clips(pd.read_parquet(sm.input.clips), sm.params.shard, sm.params.num_shards)
model = load_speech_model(sm.params.model, sm.params.revision, sm.params.device)
pooled_activations(model, clips, sm.params.root).to_parquet(sm.output[0], index=False)
