"""The knock-out shard store: per unit set, the pooled activations with that set knocked out.

One safetensors file per shard (``knockout/shard-K.safetensors``): a float16
array ``[clips, units]`` per set id (rows: the shard's clips of the set's
held-out speakers, in clip_id order; columns: hidden layers L..last, neuron by
neuron), and in the metadata ``set_clips`` (set id -> its rows' clip ids, JSON)
and ``sets`` (how many sets the job was given). A shard that ran no set holds
one empty array ``empty``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open

from speechneurons.atomic import save_arrays
from speechneurons.datasets.spec import SPEAKER


def write_knocked(path: str | Path, knocked: dict[str, np.ndarray], clips: pd.DataFrame,
                  sets: pd.DataFrame) -> None:
    """Write one shard: ``knocked`` (set_id -> [rows, units], rows following ``clips``, sorted by
    clip_id, restricted to the set's held-out speakers) and the clip ids of each set's rows."""
    arrays = {k: v.astype(np.float16) for k, v in knocked.items() if len(v)}
    speakers = clips[SPEAKER].astype(str)
    set_clips = {s.set_id: clips.loc[speakers.isin(list(s.held_out)).to_numpy(), "clip_id"].tolist()
                 for s in sets.itertuples(index=False) if s.set_id in arrays}
    save_arrays(arrays or {"empty": np.zeros((0,), np.float16)}, path,
                {"set_clips": json.dumps(set_clips), "sets": str(len(sets))})


def read_knocked(paths: Sequence[str | Path], set_ids: Sequence[str],
                 clip_order: Sequence[str]) -> dict[str, np.ndarray]:
    """set_id -> [clips, units] float32 from every shard, rows in ``clip_order`` (the activation
    matrix's clip order) restricted to the clips the set ran on. A set no shard ran is absent."""
    parts: dict[str, list[np.ndarray]] = {s: [] for s in set_ids}
    clip_ids: dict[str, list[str]] = {s: [] for s in set_ids}
    for path in paths:
        with safe_open(str(path), "np") as f:
            ran = json.loads(f.metadata()["set_clips"])
            for s in parts:
                if s in f.keys():
                    parts[s].append(f.get_tensor(s).astype(np.float32))
                    clip_ids[s] += ran[s]
    knocked = {}
    for s, arrays in parts.items():
        if arrays:
            row = pd.Series(range(len(clip_ids[s])), index=clip_ids[s])
            knocked[s] = np.vstack(arrays)[row.loc[[c for c in clip_order if c in row.index]].to_numpy()]
    return knocked
