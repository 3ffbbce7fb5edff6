"""Pooled activations: per clip and unit, statistics over frames (the activation cache)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.audio import load_waveform
from speechneurons.failures import ClipFailures
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
STATISTICS = ("mean", "std", "max")


def cache_sites(model: SpeechModel, sites: Sequence[str]) -> list[tuple[str, int]]:
    """Every (site, layer) of the asked sites: hidden 0..L, ffn 1..L."""
    out = []
    for site in sites:
        lowest = 0 if site == "hidden" else 1
        out += [(site, k) for k in range(lowest, model.num_layers + 1)]
    return out


def pool_frames(values: torch.Tensor) -> dict[str, np.ndarray]:
    """[frames, units] -> mean, std (population) and max over frames, each [units]."""
    return {
        "mean": values.mean(dim=0).cpu().numpy(),
        "std": values.std(dim=0, unbiased=False).cpu().numpy(),
        "max": values.max(dim=0).values.cpu().numpy(),
    }


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
) -> ActivationShard:
    """One row per (clip, unit) with mean, std and max over frames.

    Clips run one at a time, so no padding ever reaches the model (WavLM
    Base's group-norm front end would otherwise see the padding). A clip that
    raises is recorded in ``failed`` and the others go on
    (:class:`speechneurons.failures.ClipFailures`).
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
        parts.append(pd.DataFrame({
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


@dataclass
class ActivationMatrix:
    """Pooled activations as a matrix: values[clip i, unit j]."""

    clip_ids: list[str]
    units: pd.DataFrame  # site, layer, neuron
    values: np.ndarray  # [clips, units] float32

    def column(self, site: str, layer: int, neuron: int) -> int:
        """The column of one unit (KeyError naming it when the cache lacks it)."""
        hit = self.units.index[(self.units["site"] == site) & (self.units["layer"] == layer)
                               & (self.units["neuron"] == neuron)]
        if len(hit) == 0:
            raise KeyError(f"unit ({site}, {layer}, {neuron}) is not in the activation cache")
        return int(hit[0])

    def long(self, units: pd.DataFrame) -> pd.DataFrame:
        """One row per (clip, unit) for the given units: clip_id, site, layer, neuron, value."""
        columns = self.units.reset_index().merge(units[["site", "layer", "neuron"]].drop_duplicates(),
                                                 on=["site", "layer", "neuron"])
        n_clips, n_units = len(self.clip_ids), len(columns)
        return pd.DataFrame({
            "clip_id": np.repeat(np.asarray(self.clip_ids, dtype=object), n_units),
            "site": np.tile(columns["site"].to_numpy(), n_clips),
            "layer": np.tile(columns["layer"].to_numpy(), n_clips),
            "neuron": np.tile(columns["neuron"].to_numpy(), n_clips),
            "value": self.values[:, columns["index"].to_numpy()].reshape(-1),
        })


def activation_matrix(paths: Sequence[str | Path], statistic: str = "mean",
                      sites: Sequence[str] | None = None) -> ActivationMatrix:
    """Read activation shards into [clips, units] for one pooled statistic.

    Rows are in clip_id order, whatever the shards, so that statistics do not
    depend (even in the last bit) on how clips were dealt to jobs. Every clip
    must carry the same units in the same order (as the cache writes them); a
    shard that breaks this raises ValueError naming it.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"stats.activation: {statistic!r} is not one of {list(STATISTICS)}")
    clip_ids, blocks, units = [], [], None
    for path in paths:
        table = pd.read_parquet(path, columns=["clip_id", "site", "layer", "neuron", statistic])
        if sites is not None:
            table = table[table["site"].isin(list(sites))]
        if table.empty:
            continue
        for clip_id, rows in table.groupby("clip_id", sort=True):
            these = rows[["site", "layer", "neuron"]].reset_index(drop=True)
            if units is None:
                units = these
            elif not these.equals(units):
                raise ValueError(f"{path}: clip {clip_id} has other units than the first clip")
            clip_ids.append(str(clip_id))
            blocks.append(rows[statistic].to_numpy(np.float32))
    if units is None:
        raise ValueError(f"no activations in {list(map(str, paths))}")
    order = np.argsort(clip_ids, kind="stable")
    return ActivationMatrix(clip_ids=[clip_ids[i] for i in order], units=units,
                            values=np.vstack(blocks)[order])
