"""Deterministic assignment of clips to shards (one Snakemake job each).

A clip's shard follows from its file name alone (a hash of the name without
folder or suffix), so adding, removing or replacing a clip changes the
contents of one shard only; the Snakefile computes the same assignment from
the files under the root before any job runs
(:mod:`speechneurons.datasets.state`). Pure Python: the Snakefile imports it.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def shard_of(path: str, num_shards: int) -> int:
    """The shard of the file at ``path`` (relative to the root): a stable hash of its stem.

    Files that share a stem (the index's duplicate-clip_id rule compares
    stems) share a shard.
    """
    stem = PurePosixPath(str(path).replace("\\", "/")).stem
    # a name that is not UTF-8 keeps its bytes (the index rejects it, but it still has a shard)
    return int.from_bytes(hashlib.sha1(stem.encode("utf-8", "surrogateescape")).digest()[:8], "big") % num_shards


def shard_clips(clips: "pd.DataFrame", shard: int, num_shards: int) -> "pd.DataFrame":
    """Clips of shard ``shard`` of ``num_shards`` (:func:`shard_of` of each path), by clip_id.

    Depends only on each clip's own file name, never on the order files were
    found or on the other clips. A shard may be empty, most often with fewer
    clips than shards.
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range for compute.shards={num_shards}")
    mine = clips["path"].map(lambda p: shard_of(p, num_shards) == shard).to_numpy(dtype=bool)
    return clips[mine].sort_values("clip_id", kind="stable").reset_index(drop=True)
