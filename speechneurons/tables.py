"""Aggregation: per-(clip, unit) summaries joined with the index, and per-condition statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The factors of the study, as columns of ``clips.parquet``.
CONDITION = ["emotion", "gender", "intensity"]
UNIT = ["site", "layer", "neuron"]
METADATA = ["clip_id", "actor", "statement", "repetition", *CONDITION]


def empty_table(schema: dict[str, str]) -> pd.DataFrame:
    """A table with no rows and the given columns and dtypes (an empty shard)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.items()})


def clip_unit_table(summaries: pd.DataFrame, clips: pd.DataFrame) -> pd.DataFrame:
    """Per-(clip, unit) summaries with the clip's metadata (actor, emotion, gender, ...).

    Raises KeyError naming the clip ids that are missing from the index.
    """
    missing = sorted(set(summaries["clip_id"]) - set(clips["clip_id"]))
    if missing:
        raise KeyError(f"summaries hold clips not in clips.parquet: {missing[:5]}")
    merged = summaries.merge(clips[METADATA], on="clip_id", how="left", validate="many_to_one")
    order = [*METADATA, *[c for c in summaries.columns if c != "clip_id"]]
    return merged[order].sort_values(["clip_id", *UNIT]).reset_index(drop=True)


def condition_table(clip_units: pd.DataFrame) -> pd.DataFrame:
    """Per (unit, emotion, gender, intensity): how the attribution summaries are distributed.

    n_clips and n_actors count the evidence (actors, not clips, are the
    independent units of RAVDESS); mean/std/sem/median of the total
    attribution; means of absolute mass, peak time and the unablated value.
    """
    grouped = clip_units.groupby([*UNIT, *CONDITION], observed=True, sort=True)
    out = grouped.agg(
        n_clips=("clip_id", "size"),
        n_actors=("actor", "nunique"),
        mean_total=("total", "mean"),
        std_total=("total", lambda v: v.std(ddof=1) if len(v) > 1 else np.nan),
        median_total=("total", "median"),
        mean_abs_mass=("abs_mass", "mean"),
        mean_peak_time_s=("peak_time_s", "mean"),
        mean_original=("original", "mean"),
    ).reset_index()
    out["sem_total"] = out["std_total"] / np.sqrt(out["n_clips"])
    return out
