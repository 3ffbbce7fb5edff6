"""Pooled activations: per clip and unit, statistics over frames (computing the activation cache;
:mod:`speechneurons.cache` reads it without torch)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.audio import load_waveform
from speechneurons.failures import ClipFailures
from speechneurons.models import SpeechModel
from speechneurons.pooling import pool_frames
from speechneurons.schemas import ACTIVATION_SCHEMA, empty_table

log = logging.getLogger(__name__)

def cache_sites(model: SpeechModel, sites: Sequence[str]) -> list[tuple[str, int]]:
    """Every (site, layer) of the asked sites: hidden 0..L, ffn 1..L, sae the layers with an SAE."""
    out = []
    for site in sites:
        if site == "sae":
            out += [("sae", k) for k in model.sae_layers()]
            continue
        lowest = 0 if site == "hidden" else 1
        out += [(site, k) for k in range(lowest, model.num_layers + 1)]
    return out


@dataclass
class ActivationShard:
    """One activation job's output: pooled table and, if asked, frame-level arrays."""

    pooled: pd.DataFrame  # ACTIVATION_SCHEMA
    frames: dict[str, np.ndarray]  # clip_id -> [frames, units] float16 (empty unless asked)
    units: pd.DataFrame  # site, layer, neuron: column i of every frame array
    failed: pd.DataFrame  # FAILED_SCHEMA: clips whose activations could not be computed


def pooled_activations(
    model: SpeechModel,
    clips: pd.DataFrame,
    dataset_root: str | Path,
    sites: Sequence[str] = ("hidden",),
    keep_frames: bool = False,
    progress: bool = True,
    sink: Callable[[pd.DataFrame], None] | None = None,
) -> ActivationShard:
    """One row per (clip, unit) with mean, std and max over frames.

    Clips run one at a time, so no padding ever reaches the model (WavLM
    Base's group-norm front end would otherwise see the padding). A clip that
    raises is recorded in ``failed`` and the others go on
    (:class:`speechneurons.failures.ClipFailures`). With ``sink``, each
    clip's rows go to it as they are computed (a writer:
    :func:`speechneurons.provenance.table_writer`) and ``pooled`` is left
    empty, so that memory does not grow with the shard.
    """
    wanted = cache_sites(model, sites)
    units = pd.concat([
        pd.DataFrame({"site": site, "layer": np.int32(layer),
                      "neuron": np.arange(model.width(site), dtype=np.int32)})
        for site, layer in wanted
    ], ignore_index=True)
    parts, frames = [], {}
    failures = ClipFailures("activations")

    def one_clip(clip) -> None:
        wave = torch.from_numpy(load_waveform(Path(dataset_root) / clip.path, model.sample_rate))
        with torch.inference_mode():
            captured = model.read(wave[None].to(model.device), wanted)
        values = torch.cat([captured[s][0] for s in wanted], dim=1)  # [frames, units]
        stats = pool_frames(values)
        (parts.append if sink is None else sink)(pd.DataFrame({
            "clip_id": clip.clip_id,
            "site": units["site"].to_numpy(),
            "layer": units["layer"].to_numpy(),
            "neuron": units["neuron"].to_numpy(),
            **{name: v.astype(np.float32) for name, v in stats.items()},
        }))
        if keep_frames:
            frames[clip.clip_id] = values.cpu().numpy().astype(np.float16)
        log.info("%s: %d frames x %d units", clip.clip_id, values.shape[0], values.shape[1])

    for clip in tqdm(clips.itertuples(index=False), total=len(clips), desc="activations",
                     unit="clip", disable=not progress):
        failures.attempt(clip.clip_id, clip.path, lambda: one_clip(clip))
    failures.check(len(clips))
    pooled = pd.concat(parts, ignore_index=True) if parts else empty_table(ACTIVATION_SCHEMA)
    return ActivationShard(pooled=pooled, frames=frames, units=units, failed=failures.table())


def layer_frames(model: SpeechModel, clips: pd.DataFrame, root: str | Path, site: str, layers: Sequence[int],
                 progress: bool = True):
    """Frame-level activations of ``site`` at ``layers`` for every clip: ({clip_id: [units,
    frames] float32}, the unit table, failed clips): what the sparse autoencoders learn from
    (:mod:`speechneurons.sae`). One forward pass per clip, as deep as the deepest layer asked."""
    wanted = [(site, int(layer)) for layer in layers]
    units = pd.concat([pd.DataFrame({"site": site, "layer": np.int32(layer),
                                     "neuron": np.arange(model.width(site), dtype=np.int32)})
                       for _, layer in wanted], ignore_index=True)
    frames, failures = {}, ClipFailures("sae_frames")

    def one_clip(clip) -> None:
        wave = torch.from_numpy(load_waveform(Path(root) / clip.path, model.sample_rate))
        with torch.inference_mode():
            captured = model.read(wave[None].to(model.device), wanted)
        frames[clip.clip_id] = torch.cat([captured[w][0] for w in wanted], dim=1).t().float().cpu().numpy()

    for clip in tqdm(clips.itertuples(index=False), total=len(clips), desc="sae frames", unit="clip",
                     disable=not progress):
        failures.attempt(clip.clip_id, clip.path, lambda: one_clip(clip))
    failures.check(len(clips))
    return frames, units, failures.table()
