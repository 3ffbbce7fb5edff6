"""The ``sae`` site of the activation cache, from the frames the SAEs learned from (rule
sae_activations).

A clip's latents at an SAE layer are the SAE's codes (:meth:`TopKSAE.encode`) of the clip's
frames of that layer, as the ``sae_frames`` job stored them (float32: the frames the SAE was
trained on, so the codes equal those of the forward pass; float16 frames would move TopK's
choice at near ties, by up to 0.007 in a latent's mean in the tests). They are pooled over frames as every unit of
the cache is (:func:`speechneurons.pooling.pool_frames`) and written in shards of their own,
beside the activation pass's. So a retrained SAE (any changed clip retrains it: it learns from
every clip's frames) reruns this job per shard, an encoding of stored frames, and no forward pass
of the model; :class:`speechneurons.cache.ActivationCache` joins each clip's two parts. No model
code is imported: only the SAE (:mod:`speechneurons.sae_site`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.pooling import pool_frames
from speechneurons.sae_site import UntrainedSAE, load_sae
from speechneurons.schemas import ACTIVATION_SCHEMA, empty_table
from speechneurons.unit_arrays import read_units

log = logging.getLogger(__name__)


def pooled_latents(frames_path: str | Path, site: str, layers: Sequence[int], sae_paths: Sequence[str | Path],
                   device: str = "cpu", progress: bool = True,
                   sink: Callable[[pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """One row per (clip, latent) of every trained SAE of ``layers`` (its file in ``sae_paths``,
    same order), with mean, std and max over the clip's frames: rows of
    :data:`speechneurons.schemas.ACTIVATION_SCHEMA`, site ``sae``.

    frames_path: one shard's frame arrays ({clip_id: [units, frames]},
    :mod:`speechneurons.unit_arrays`) holding ``site`` at each layer. A layer
    whose file holds no SAE (too few speakers to train one) has no latents
    (logged). With ``sink``, each clip's rows go to it and the returned table
    is empty, so that memory does not grow with the shard.
    """
    from safetensors import safe_open

    saes = []
    for layer, path in zip(layers, sae_paths, strict=True):
        try:
            sae, _ = load_sae(path)
        except UntrainedSAE as why:
            log.warning("sae layer %d has no latents: %s", layer, why)
            continue
        saes.append((int(layer), sae.to(device).eval()))
    units = read_units(frames_path)
    rows_of = {}
    for layer, sae in saes:
        rows_of[layer] = np.flatnonzero(((units["site"] == site) & (units["layer"] == layer)).to_numpy())
        if len(rows_of[layer]) != sae.width:
            raise ValueError(f"{frames_path}: {len(rows_of[layer])} units of {site} layer {layer}, but its SAE reads "
                             f"{sae.width}-wide frames (sae.site, sae.layers); rerun sae_frames and sae_train")
    latents = pd.DataFrame({
        "site": np.repeat("sae", sum(sae.latents for _, sae in saes)),
        "layer": np.concatenate([np.full(sae.latents, layer, dtype=np.int32) for layer, sae in saes] or
                                [np.empty(0, np.int32)]),
        "neuron": np.concatenate([np.arange(sae.latents, dtype=np.int32) for _, sae in saes] or
                                 [np.empty(0, np.int32)]),
    })
    parts = []
    with safe_open(str(frames_path), framework="numpy") as f:
        clip_ids = sorted(f.keys()) if saes else []
        for clip_id in tqdm(clip_ids, desc="sae latents", unit="clip", disable=not progress):
            array = f.get_tensor(clip_id)  # [units, frames]
            with torch.inference_mode():
                codes = torch.cat([sae.encode(torch.from_numpy(array[rows_of[layer]].T.astype(np.float32)).to(device))
                                   for layer, sae in saes], dim=1)  # [frames, latents of every layer]
                stats = pool_frames(codes)
            (parts.append if sink is None else sink)(pd.DataFrame({
                "clip_id": clip_id, "site": latents["site"].to_numpy(), "layer": latents["layer"].to_numpy(),
                "neuron": latents["neuron"].to_numpy(),
                **{name: v.astype(np.float32) for name, v in stats.items()}}))
    return pd.concat(parts, ignore_index=True) if parts else empty_table(ACTIVATION_SCHEMA)
