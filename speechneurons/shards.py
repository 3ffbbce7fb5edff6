"""Deterministic assignment of clips to shards (one Snakemake job each)."""

from __future__ import annotations

import pandas as pd


def shard_clips(clips: pd.DataFrame, shard: int, num_shards: int) -> pd.DataFrame:
    """Clips of shard ``shard`` of ``num_shards``: every num_shards-th clip by clip_id.

    Round robin over the sorted clip ids balances the shards and depends only
    on the index, never on the order files were found. A shard may be empty
    when there are fewer clips than shards.
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range for compute.shards={num_shards}")
    ordered = clips.sort_values("clip_id", kind="stable").reset_index(drop=True)
    return ordered.iloc[shard::num_shards].reset_index(drop=True)
