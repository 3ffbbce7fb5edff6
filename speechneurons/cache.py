"""The activation cache, read: pooled statistics per (clip, unit) as a [clips, units] matrix.

Plain numpy and pandas (no torch), so that the statistics, probes and figure
jobs that only read the cache start fast; :mod:`speechneurons.activations`
computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

#: The pooled statistics of a shard (the value columns of schemas.ACTIVATION_SCHEMA).
STATISTICS = ("mean", "std", "max")


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
