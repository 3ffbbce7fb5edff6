"""Per-clip arrays of units, one safetensors file per shard: the attribution store's arrays
(``[units, segments]``) and the frame-level activation cache (``[units, frames]``).

Each clip's array is keyed by its clip id; the file's metadata holds the
unit table (site, layer, neuron of every row) and the writer's provenance.
A leaf module (numpy, pandas, safetensors): the activation and ablation
jobs write through it, the readers of attributions build on it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open

from speechneurons.atomic import save_arrays

log = logging.getLogger(__name__)

FORMAT = "speechneurons-attributions/1"
FLOAT16_MAX = float(np.finfo(np.float16).max)


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
