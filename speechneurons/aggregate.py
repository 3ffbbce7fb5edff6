"""Aggregation: per-(clip, unit) summaries joined with the index, and per-condition statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speechneurons.datasets.index import cell_columns
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.schemas import UNIT, current_names


def metadata_columns(spec: CorpusSpec) -> list[str]:
    """The clip columns joined to per-(clip, unit) tables: clip_id, speaker, every factor and the
    corpus's extra columns."""
    return ["clip_id", SPEAKER, *spec.factor_names, *spec.extra_columns]


def clip_unit_table(summaries: pd.DataFrame, clips: pd.DataFrame, spec: CorpusSpec) -> pd.DataFrame:
    """Per-(clip, unit) summaries with the clip's speaker and factors.

    Raises KeyError naming the clip ids that are missing from the index. Summaries written by
    0.1.0 (``voiced_share``) come out under the current names (``loud_share``).
    """
    summaries = current_names(summaries)
    missing = sorted(set(summaries["clip_id"]) - set(clips["clip_id"]))
    if missing:
        raise KeyError(f"summaries hold clips not in clips.parquet: {missing[:5]}")
    metadata = metadata_columns(spec)
    merged = summaries.merge(clips[metadata], on="clip_id", how="left", validate="many_to_one")
    order = [*metadata, *[c for c in summaries.columns if c != "clip_id"]]
    return merged[order].sort_values(["clip_id", *UNIT]).reset_index(drop=True)


def condition_table(clip_units: pd.DataFrame, spec: CorpusSpec) -> pd.DataFrame:
    """Per (unit, target, group, graded level): how the attribution summaries are distributed.

    n_clips and n_speakers count the evidence (speakers, not clips, are the
    independent units); mean/std/sem/median of the total attribution; means
    of absolute mass, peak time and the unablated value.
    """
    grouped = clip_units.groupby([*UNIT, *cell_columns(spec)], observed=True, sort=True, dropna=False)
    out = grouped.agg(
        n_clips=("clip_id", "size"),
        n_speakers=(SPEAKER, "nunique"),
        mean_total=("total", "mean"),
        std_total=("total", lambda v: v.std(ddof=1) if len(v) > 1 else np.nan),
        median_total=("total", "median"),
        mean_abs_mass=("abs_mass", "mean"),
        mean_peak_time_s=("peak_time_s", "mean"),
        mean_original=("original", "mean"),
    ).reset_index()
    out["sem_total"] = out["std_total"] / np.sqrt(out["n_clips"])
    return out
