"""Snakemake adapter: pooled activations with each unit set knocked out, one shard (rule knockout_activations)."""

import json

import numpy as np
import pandas as pd
import torch

from speechneurons.atomic import save_arrays
from speechneurons.cache import activation_matrix
from speechneurons.datasets import load_corpus
from speechneurons.knockout.forward import knocked_activations
from speechneurons.knockout.sets import KnockoutSettings, knockout_sets
from speechneurons.logs import log_to_file
from speechneurons.models import load_speech_model
from speechneurons.shards import shard_clips

sm = snakemake  # noqa: F821
log_to_file(sm.log[0])
torch.set_num_threads(sm.threads)
p = sm.params
spec = load_corpus(p.corpus["name"], p.corpus["manifest"]).spec
matrix = activation_matrix(sm.input.activations, "mean", sites=["hidden"])
settings = KnockoutSettings(value=p.value, random_sets=p.random_sets, nearest=p.nearest, seed=p.seed,
                            layers=None if p.layers == "all" else tuple(p.layers))
sets = knockout_sets(pd.read_parquet(sm.input.selected), matrix, spec, settings)
clips = shard_clips(pd.read_parquet(sm.input.clips), p.shard, p.num_shards).sort_values("clip_id")
clips = clips[clips["clip_id"].isin(matrix.clip_ids)]  # a clip that failed in the cache has no baseline
arrays = {}
if len(sets) and len(clips):
    model = load_speech_model(p.model, p.revision, p.device)
    arrays = knocked_activations(model, clips, p.root, sets)
arrays = {k: v.astype(np.float16) for k, v in arrays.items() if len(v)}
# the clips each set ran on: the shard's clips of the set's held-out speakers, in shard order
speakers = clips["speaker"].astype(str)
set_clips = {s.set_id: clips.loc[speakers.isin(list(s.held_out)).to_numpy(), "clip_id"].tolist()
             for s in sets.itertuples(index=False) if s.set_id in arrays}
save_arrays(arrays or {"empty": np.zeros((0,), np.float16)}, sm.output[0],
            {"set_clips": json.dumps(set_clips), "sets": str(len(sets))})
