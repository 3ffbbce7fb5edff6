"""Per-(clip, unit) summaries of an attribution curve over segments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speechneurons.ablation.segments import Segments

#: Columns and dtypes of the per-(clip, unit) summary table.
SUMMARY_SCHEMA = {
    "clip_id": "str",
    "site": "str",
    "layer": "int32",
    "neuron": "int32",
    "original": "float32",
    "total": "float32",
    "positive_mass": "float32",
    "negative_mass": "float32",
    "abs_mass": "float32",
    "peak_segment": "int32",
    "peak_time_s": "float32",
    "peak_attribution": "float32",
    "centre_of_mass_s": "float32",
    "loud_share": "float32",
    "loud_time_share": "float32",
}


def summarise(attributions: np.ndarray, original: np.ndarray, segments: Segments,
              loud: np.ndarray | None = None) -> pd.DataFrame:
    """[units, segments] attributions -> one row per unit.

    total: sum over segments; positive_mass / negative_mass: sums of the
    positive / negative parts (negative_mass <= 0); abs_mass: sum of
    absolute values; peak: the segment of largest absolute attribution, its
    midpoint time and its signed value; centre_of_mass_s: the mean of
    segment midpoints weighted by absolute attribution (NaN if all zero).
    ``original`` is the unit's reduced value on the unablated clip.
    loud_share: the share of abs_mass in loud segments (``loud``, [segments]
    bool: within ``ablation.loudness_threshold_db`` of the clip's loudest
    segment; NaN when not given or abs_mass is 0), to compare with
    loud_time_share, the share of the clip's time that is loud.
    """
    a = np.asarray(attributions, dtype=np.float64)
    mid = (segments.start_s + segments.end_s) / 2
    magnitude = np.abs(a)
    peak = magnitude.argmax(axis=1)
    abs_mass = magnitude.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(abs_mass > 0, (magnitude * mid).sum(axis=1) / abs_mass, np.nan)
    if loud is None:
        loud_share = np.full(len(a), np.nan)
        loud_time = np.nan
    else:
        loud = np.asarray(loud, dtype=bool)
        durations = segments.end_s - segments.start_s
        loud_time = durations[loud].sum() / durations.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            loud_share = np.where(abs_mass > 0, magnitude[:, loud].sum(axis=1) / abs_mass, np.nan)
    return pd.DataFrame(
        {
            "original": np.asarray(original, dtype=np.float32),
            "total": a.sum(axis=1).astype(np.float32),
            "positive_mass": np.clip(a, 0, None).sum(axis=1).astype(np.float32),
            "negative_mass": np.clip(a, None, 0).sum(axis=1).astype(np.float32),
            "abs_mass": abs_mass.astype(np.float32),
            "peak_segment": peak.astype(np.int32),
            "peak_time_s": mid[peak].astype(np.float32),
            "peak_attribution": a[np.arange(len(a)), peak].astype(np.float32),
            "centre_of_mass_s": centre.astype(np.float32),
            "loud_share": loud_share.astype(np.float32),
            "loud_time_share": np.full(len(a), loud_time, dtype=np.float32),
        }
    )
