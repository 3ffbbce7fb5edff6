"""Storage of per-segment attributions: one safetensors file per shard + a parquet index.

All per-segment attributions of a full study are large (13 x 768 hidden
units x 150 segments x 1,440 clips = 2.2 G values; four times that for the
feed-forward units). A long parquet table would repeat clip, unit and
segment ids for every value; instead each clip's attributions are one
[units, segments] array in a safetensors file (a plain, memory-mappable,
documented format that transformers already depends on), keyed by clip id.
Its metadata holds the unit table (site, layer, neuron for every row). The
segments of every clip (times, level, voicing) are a parquet index beside it.
:func:`read_attributions` turns any subset back into the long table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from safetensors import safe_open

from speechneurons.atomic import save_arrays
from speechneurons.tables import empty_table

log = logging.getLogger(__name__)

FORMAT = "speechneurons-attributions/1"
FLOAT16_MAX = float(np.finfo(np.float16).max)

#: Columns and dtypes of the long per-segment attribution table.
ATTRIBUTION_SCHEMA = {
    "clip_id": "str",
    "site": "str",
    "layer": "int32",
    "neuron": "int32",
    "segment": "int32",
    "start_s": "float32",
    "end_s": "float32",
    "attribution": "float32",
}
#: Columns and dtypes of the segment index written beside each safetensors shard.
SEGMENT_SCHEMA = {
    "clip_id": "str",
    "segment": "int32",
    "start_s": "float32",
    "end_s": "float32",
    "level_db": "float32",
    "voiced": "bool",
}


def write_unit_arrays(path: str | Path, curves: dict[str, np.ndarray], units: pd.DataFrame,
                      dtype: str = "float16", provenance: dict | None = None) -> str:
    """Write {clip_id: [units, segments or frames]} to ``path``; returns the dtype used.

    Used for per-segment attributions and for frame-level activations alike:
    row i of every array is unit i of ``units``.

    float16 keeps 11 significant bits (relative error <= 4.9e-4), plenty for
    curves that are plotted and averaged; summaries are computed in float32
    before storage. A shard whose values overflow float16 is stored as float32.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"ablation.storage_dtype: {dtype!r} is not float16 or float32")
    if dtype == "float16" and any(np.abs(a).max(initial=0) > FLOAT16_MAX for a in curves.values()):
        log.warning("%s: attributions exceed the float16 range; storing float32", path)
        dtype = "float32"
    tensors = {clip: np.ascontiguousarray(a, dtype=dtype) for clip, a in curves.items()}
    metadata = {
        "format": FORMAT,
        "units": json.dumps({c: units[c].tolist() for c in ("site", "layer", "neuron")}),
    }
    if provenance is not None:
        metadata["provenance"] = json.dumps(provenance, sort_keys=True)
    save_arrays(tensors, path, metadata)
    return dtype



def read_units(path: str | Path) -> pd.DataFrame:
    """The unit table (site, layer, neuron) of a shard: row i of every array."""
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format={meta.get('format')!r})")
    units = json.loads(meta["units"])
    return pd.DataFrame({
        "site": pd.Series(units["site"], dtype="str"),
        "layer": np.asarray(units["layer"], dtype=np.int32),
        "neuron": np.asarray(units["neuron"], dtype=np.int32),
    })


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
        segments = pd.read_parquet(segment_path)
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
        segments = pd.read_parquet(segment_path)
        by_clip = dict(tuple(segments.groupby("clip_id", sort=False)))
        with safe_open(str(tensor_path), framework="numpy") as f:
            for clip_id in sorted(f.keys()):
                yield (clip_id, units, f.get_tensor(clip_id).astype(np.float32),
                       by_clip[clip_id].sort_values("segment").reset_index(drop=True))
