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
#: the dtype pandas reads a parquet string column as (what the unit tables have always carried)
STRING = pd.Series(["hidden"]).dtype


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
    # first the clip ids of every shard (a dictionary column: cheap), so that each shard's values
    # go straight to their rows of one matrix in clip_id order (no stacked copy)
    ids = [_clip_ids(path, sites) for path in paths]
    every = [c for shard in ids for c in shard]
    if not every:
        raise ValueError(f"no activations in {list(map(str, paths))}")
    order = np.argsort(every, kind="stable")
    row_of = np.empty(len(every), dtype=np.int64)
    row_of[order] = np.arange(len(every))
    values, units, done = None, None, 0
    for path, shard_ids in zip(paths, ids):
        if not shard_ids:
            continue
        read_ids, shard_units, block = _read_shard(path, statistic, sites)
        if read_ids != shard_ids:  # both in clip_id order
            raise ValueError(f"{path}: changed while it was read")
        if units is None:
            units = shard_units
            values = np.empty((len(every), len(units)), dtype=np.float32)
        elif not shard_units.equals(units):
            raise ValueError(f"{path}: clip {read_ids[0]} has other units than the first clip")
        values[row_of[done:done + len(read_ids)]] = block
        done += len(read_ids)
    return ActivationMatrix(clip_ids=[every[i] for i in order], units=units, values=values)


def _clip_ids(path: str | Path, sites: Sequence[str] | None) -> list[str]:
    """The clip ids of one shard (of its rows of ``sites``), in clip_id order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["clip_id", "site"], read_dictionary=["clip_id", "site"])
    table = table.unify_dictionaries().combine_chunks()
    if table.num_rows == 0:
        return []
    clip = table["clip_id"].chunk(0)
    codes = clip.indices.to_numpy(zero_copy_only=False)
    if sites is not None:
        site = table["site"].chunk(0)
        codes = codes[np.isin(np.asarray(site.dictionary.to_pylist(), dtype=object), list(sites))[
            site.indices.to_numpy(zero_copy_only=False)]]
    names = np.asarray(clip.dictionary.to_pylist(), dtype=object)
    return sorted(str(n) for n in names[np.unique(codes)])


def _read_shard(path: str | Path, statistic: str, sites: Sequence[str] | None
                ) -> tuple[list[str], pd.DataFrame | None, np.ndarray | None]:
    """(clip ids in clip_id order, the units of each clip, values [clips, units] float32) of one
    shard; (.., None, None) when it holds no row of ``sites``.

    The columns are read with pyarrow (clip ids and sites as dictionary codes) and the values
    reshaped, rather than grouped clip by clip in pandas: a few bytes per value instead of tens.
    A clip's rows keep their order in the file. ValueError names the shard and the first clip
    whose units differ from the shard's first clip's.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["clip_id", "site", "layer", "neuron", statistic],
                          read_dictionary=["clip_id", "site"]).unify_dictionaries().combine_chunks()
    site_names = np.asarray(table["site"].chunk(0).dictionary.to_pylist(), dtype=object) if table.num_rows else None
    if table.num_rows and sites is not None:
        keep = np.isin(site_names, list(sites))[table["site"].chunk(0).indices.to_numpy(zero_copy_only=False)]
        table = table.filter(keep).combine_chunks()
    if table.num_rows == 0:
        return [], None, None
    clip = table["clip_id"].chunk(0)
    names = np.asarray(clip.dictionary.to_pylist(), dtype=object)
    present = np.unique(clip.indices.to_numpy(zero_copy_only=False))
    present = present[np.argsort(names[present].astype(str), kind="stable")]  # clip_id order
    rank = np.full(len(names), -1)
    rank[present] = np.arange(len(present))
    clip_rank = rank[clip.indices.to_numpy(zero_copy_only=False)]
    rows = np.argsort(clip_rank, kind="stable")  # each clip's rows together, in file order
    ids = [str(n) for n in names[present]]
    counts = np.bincount(clip_rank, minlength=len(present))
    width = int(counts[0])
    columns = {"site": table["site"].chunk(0).indices.to_numpy(zero_copy_only=False),
               "layer": table["layer"].to_numpy(), "neuron": table["neuron"].to_numpy()}
    differs = counts != width
    if not differs.any():
        for column in columns.values():
            block = column[rows].reshape(len(ids), width)
            differs |= (block != block[:1]).any(axis=1)
    if differs.any():
        raise ValueError(f"{path}: clip {ids[int(np.flatnonzero(differs)[0])]} has other units than the first clip")
    first = rows[:width]
    units = pd.DataFrame({"site": pd.Series(site_names[columns["site"][first]]).astype(STRING),
                          "layer": columns["layer"][first], "neuron": columns["neuron"][first]})
    values = table[statistic].to_numpy()[rows].astype(np.float32).reshape(len(ids), width)
    return ids, units, values
