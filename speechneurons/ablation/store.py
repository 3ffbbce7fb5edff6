"""Storage of per-segment attributions: one safetensors file per shard + a parquet index.

All per-segment attributions of a full study are large (13 x 768 hidden
units x 150 segments x 1,440 clips = 2.2 G values; four times that for the
feed-forward units). A long parquet table would repeat clip, unit and
segment ids for every value; instead each clip's attributions are one
[units, segments] array in a safetensors file (a plain, memory-mappable,
documented format that transformers already depends on), keyed by clip id.
Its metadata holds the unit table (site, layer, neuron for every row). The
segments of every clip (times, level, loudness) are a parquet index beside it.
:func:`read_attributions` turns any subset back into the long table; the
arrays are written and their unit table read by :mod:`speechneurons.unit_arrays`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from safetensors import safe_open

from speechneurons.schemas import ATTRIBUTION_SCHEMA, current_names, empty_table
from speechneurons.unit_arrays import read_units
from speechneurons.integrity import read_parquet

def read_attributions(
    tensor_paths: Sequence[str | Path],
    segment_paths: Sequence[str | Path],
    clip_ids: Iterable[str] | None = None,
    units: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The long table (ATTRIBUTION_SCHEMA) for the given clips and units (None = all)."""
    wanted_clips = None if clip_ids is None else set(clip_ids)
    parts = []
    for tensor_path, segment_path in zip(tensor_paths, segment_paths, strict=True):
        unit_table = read_units(tensor_path)
        rows = np.arange(len(unit_table))
        if units is not None:
            key = units[["site", "layer", "neuron"]].astype({"layer": "int32", "neuron": "int32"})
            rows = unit_table.reset_index().merge(key, on=["site", "layer", "neuron"])["index"].to_numpy()
        segments = read_parquet(segment_path)
        with safe_open(str(tensor_path), framework="numpy") as f:
            for clip_id in f.keys():
                if wanted_clips is not None and clip_id not in wanted_clips:
                    continue
                values = f.get_tensor(clip_id)[rows].astype(np.float32)
                seg = segments[segments["clip_id"] == clip_id].sort_values("segment")
                n_units, n_seg = values.shape
                parts.append(pd.DataFrame({
                    "clip_id": clip_id,
                    "site": np.repeat(unit_table["site"].to_numpy()[rows], n_seg),
                    "layer": np.repeat(unit_table["layer"].to_numpy()[rows], n_seg),
                    "neuron": np.repeat(unit_table["neuron"].to_numpy()[rows], n_seg),
                    "segment": np.tile(seg["segment"].to_numpy(np.int32), n_units),
                    "start_s": np.tile(seg["start_s"].to_numpy(np.float32), n_units),
                    "end_s": np.tile(seg["end_s"].to_numpy(np.float32), n_units),
                    "attribution": values.reshape(-1),
                }))
    if not parts:
        return empty_table(ATTRIBUTION_SCHEMA)
    return pd.concat(parts, ignore_index=True)


def iter_curves(tensor_paths: Sequence[str | Path], segment_paths: Sequence[str | Path]):
    """Yield (clip_id, units table, [units, segments] float32, that clip's segments), clip by clip."""
    for tensor_path, segment_path in zip(tensor_paths, segment_paths, strict=True):
        units = read_units(tensor_path)
        segments = current_names(read_parquet(segment_path))
        by_clip = dict(tuple(segments.groupby("clip_id", sort=False)))
        with safe_open(str(tensor_path), framework="numpy") as f:
            for clip_id in sorted(f.keys()):
                yield (clip_id, units, f.get_tensor(clip_id).astype(np.float32),
                       by_clip[clip_id].sort_values("segment").reset_index(drop=True))
