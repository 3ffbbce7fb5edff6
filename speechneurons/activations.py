"""Pooled activations: per clip and hidden unit, statistics over frames."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.audio import load_waveform
from speechneurons.models import SpeechModel
from speechneurons.tables import empty_table

log = logging.getLogger(__name__)

#: Columns and dtypes of an activation shard table.
ACTIVATION_SCHEMA = {
    "clip_id": "str",
    "site": "str",
    "layer": "int32",
    "neuron": "int32",
    "mean": "float32",
    "std": "float32",
    "max": "float32",
}


def pool_hidden_states(hidden: torch.Tensor) -> dict[str, np.ndarray]:
    """[layers, frames, hidden] -> mean, std (population) and max over frames, each [layers, hidden]."""
    return {
        "mean": hidden.mean(dim=1).cpu().numpy(),
        "std": hidden.std(dim=1, unbiased=False).cpu().numpy(),
        "max": hidden.max(dim=1).values.cpu().numpy(),
    }


def pooled_activations(
    model: SpeechModel, clips: pd.DataFrame, dataset_root: str | Path, progress: bool = True
) -> pd.DataFrame:
    """One row per (clip, hidden layer 0..L, neuron) with mean, std and max over frames.

    Clips run one at a time, so no padding ever reaches the model (WavLM
    Base's group-norm front end would otherwise see the padding).
    """
    layers = list(range(model.num_layers + 1))
    n_layers, width = len(layers), model.hidden_size
    layer_col = np.repeat(np.asarray(layers, dtype=np.int32), width)
    neuron_col = np.tile(np.arange(width, dtype=np.int32), n_layers)
    parts = []
    for clip in tqdm(clips.itertuples(index=False), total=len(clips), desc="activations",
                     unit="clip", disable=not progress):
        wave = torch.from_numpy(load_waveform(Path(dataset_root) / clip.path, model.sample_rate))
        with torch.inference_mode():
            hidden = torch.cat(model.hidden_states(wave[None].to(model.device), layers))
        stats = pool_hidden_states(hidden)
        parts.append(pd.DataFrame({
            "clip_id": clip.clip_id,
            "site": "hidden",
            "layer": layer_col,
            "neuron": neuron_col,
            **{name: values.reshape(-1).astype(np.float32) for name, values in stats.items()},
        }))
        log.info("%s: %d frames", clip.clip_id, hidden.shape[1])
    if not parts:
        return empty_table(ACTIVATION_SCHEMA)
    return pd.concat(parts, ignore_index=True)
