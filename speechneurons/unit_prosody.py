"""Which acoustic events drive a unit: its attribution curve against the clip's prosody.

Question 3 of the original guide asks whether units respond to temporal
patterns in speech. Per clip and tested unit, the Spearman correlation over
the clip's segments between the unit's signed attribution and each
measure of :data:`~speechneurons.prosody.SEGMENT_PROSODY_COLUMNS` (F0 in
semitones re the speaker's median, F0 slope, voiced share, intensity, HNR,
pause share) says whether removing the segments high in that measure moves
the unit most (rho > 0: ablating them lowers the unit's output; rho < 0:
raises it). Measures correlate in speech (louder syllables are voiced and
often higher), so each measure other than intensity is also given as a
partial correlation with intensity held fixed (ranks residualised on
intensity's ranks): a unit that follows loudness only has partial rho near 0
for F0.

The speaker is the unit of replication (the summary-statistics approach to
random effects; Holmes & Friston 1998): each clip's rho becomes Fisher's z,
z is averaged per speaker, and a one-sample t-test over speakers asks
whether the mean is 0. Speaker intercepts drop out of a within-clip
correlation, and speakers who differ in their slope (speaker x measure
slopes) widen the spread the t-test is computed from, so the test holds
under both. Every (clip, unit) pair comes from
:func:`~speechneurons.questions.tested_pairs`: a cross-fitted unit is
tested only on the speakers that did not choose it. q: Benjamini-Hochberg
over the rows of one measure.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import rankdata

from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.prosody import MEASURES, ProsodyTracks
from speechneurons.questions import Curve, tested_curves
from speechneurons.schemas import UNIT
from speechneurons.stats.fdr import bh
from speechneurons.stats.intervals import t_interval

#: What the partial correlations hold fixed.
CONTROL = "intensity_db"
#: Fewer segments with a value than this give no correlation for a clip (NaN).
MIN_SEGMENTS = 5
#: |rho| is clipped below 1 before Fisher's z.
MAX_RHO = 0.999

UNIT_COLUMNS = ["fold", *UNIT, "chosen_for", "measure", "n_clips", "n_speakers", "mean_rho", "ci_low",
                "ci_high", "t", "p", "q", "partial_rho", "partial_t", "partial_p", "partial_q", "follows"]
LAYER_COLUMNS = ["site", "layer", "chosen_for", "measure", "n_units", "n_following", "share_following",
                 "n_speakers", "mean_rho", "ci_low", "ci_high", "t", "p", "q", "partial_rho",
                 "partial_ci_low", "partial_ci_high", "partial_p", "partial_q"]


def _row_pearson(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[rows] Pearson correlation of each row of ``y`` [rows, n] with ``x`` [n] (NaN: no spread)."""
    yc = y - y.mean(axis=1, keepdims=True)
    xc = x - x.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (yc @ xc) / np.sqrt((yc * yc).sum(axis=1) * (xc @ xc))
    return np.where(np.isfinite(r), r, np.nan)


def clip_correlations(curve: np.ndarray, measures: np.ndarray, control: int | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Spearman correlations of one clip's attributions with its segments' measures.

    curve: [units, segments] signed attributions; measures: [segments,
    measures] (NaN where a segment has no value); control: the column held
    fixed in the partial correlations (None: none). Returns (rho, partial),
    each [units, measures]: NaN where fewer than :data:`MIN_SEGMENTS`
    segments have the value(s), or a unit or measure does not vary; the
    control's own partial column is NaN.
    """
    curve = np.asarray(curve, dtype=np.float64)
    n_units, n_measures = curve.shape[0], measures.shape[1]
    rho = np.full((n_units, n_measures), np.nan)
    partial = np.full((n_units, n_measures), np.nan)
    ranked: dict[bytes, np.ndarray] = {}

    def curve_ranks(mask: np.ndarray) -> np.ndarray:
        """The units' ranks over the segments of ``mask`` (measures missing in the same segments,
        as F0, its slope and HNR are, share them)."""
        key = mask.tobytes()
        if key not in ranked:
            ranked[key] = rankdata(curve[:, mask], axis=1)
        return ranked[key]

    for m in range(n_measures):
        finite = np.isfinite(measures[:, m])
        if finite.sum() >= MIN_SEGMENTS:
            rho[:, m] = _row_pearson(curve_ranks(finite), rankdata(measures[finite, m]))
        if control is None or m == control:
            continue
        both = finite & np.isfinite(measures[:, control])
        if both.sum() < MIN_SEGMENTS:
            continue
        ry = curve_ranks(both)
        rx, rc = rankdata(measures[both, m]), rankdata(measures[both, control])
        r_yx, r_yc = _row_pearson(ry, rx), _row_pearson(ry, rc)
        r_xc = _row_pearson(rx[None], rc)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = (r_yx - r_yc * r_xc) / np.sqrt((1 - r_yc ** 2) * (1 - r_xc ** 2))
        partial[:, m] = np.where(np.isfinite(p), p, np.nan)
    return rho, partial


def fisher_z(rho: np.ndarray) -> np.ndarray:
    """arctanh of rho clipped to +-:data:`MAX_RHO` (NaN stays NaN)."""
    return np.arctanh(np.clip(rho, -MAX_RHO, MAX_RHO))


def clip_unit_z(curves: Iterable[Curve], prosody: ProsodyTracks) -> pd.DataFrame:
    """Long table of Fisher z per (clip, unit, measure): clip_id, site, layer, neuron, measure, z,
    partial_z.

    ``curves`` yields (clip_id, units table, [units, segments] array, that
    clip's segments); ``prosody`` gives each segment's measures
    (:meth:`~speechneurons.prosody.ProsodyTracks.segments`). A clip without
    a track (its prosody failed) is left out.
    """
    control = MEASURES.index(CONTROL)
    parts = []
    for clip_id, units, curve, segments in curves:
        summaries = prosody.segments(clip_id, segments)
        if summaries is None:
            continue
        measures = summaries[MEASURES].to_numpy(dtype=np.float64)
        rho, partial = clip_correlations(curve, measures, control)
        n_units = len(units)
        parts.append(pd.DataFrame({
            "clip_id": clip_id,
            **{c: np.repeat(units[c].to_numpy(), len(MEASURES)) for c in UNIT},
            # a category: a study's table holds clips x units x 6 rows
            "measure": pd.Categorical.from_codes(np.tile(np.arange(len(MEASURES)), n_units), MEASURES),
            "z": fisher_z(rho).reshape(-1).astype(np.float32),
            "partial_z": fisher_z(partial).reshape(-1).astype(np.float32),
        }))
    columns = ["clip_id", *UNIT, "measure", "z", "partial_z"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)[columns]
    return out.astype({"clip_id": "category", "site": "category"})


def speaker_t(values: np.ndarray) -> dict[str, float]:
    """Mean, 95 % t interval, t and p of per-speaker values (NaN left out); rho scale = tanh(z)."""
    values = values[np.isfinite(values)]
    n = len(values)
    mean = float(values.mean()) if n else np.nan
    if n < 2 or values.std() == 0:
        return {"n": n, "mean": mean, "low": np.nan, "high": np.nan, "t": np.nan, "p": np.nan}
    test = stats.ttest_1samp(values, 0.0)
    low, high = t_interval(values)
    return {"n": n, "mean": mean, "low": low, "high": high, "t": float(test.statistic), "p": float(test.pvalue)}


def chosen_for(selected: pd.DataFrame, target: str) -> pd.DataFrame:
    """Per (fold, unit) of the tests, what chose it: the target level(s) of a cross-fitted unit
    (fold >= 0; comma-joined when it was chosen for several), ``explicit`` or ``random control``
    (fold -1, tested on every speaker)."""
    cross = selected[selected["reason"] == "cross_fit"]
    levels = (cross.groupby(["fold", *UNIT])[target]
              .agg(lambda v: ", ".join(sorted(map(str, set(v))))).rename("chosen_for").reset_index()
              if len(cross) else pd.DataFrame(columns=["fold", *UNIT, "chosen_for"]))
    other = selected[selected["reason"].isin(["explicit", "random_control"])]
    other = (other.assign(chosen_for=other["reason"].str.replace("_", " "), fold=-1)
             .drop_duplicates(["fold", *UNIT])[["fold", *UNIT, "chosen_for"]])
    out = pd.concat([levels, other], ignore_index=True)
    return out.astype({"fold": "int64"})


def unit_table(z: pd.DataFrame, tested: pd.DataFrame, labels: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per (fold, unit, measure): the test over the speakers of its tested clips.

    ``z``: :func:`clip_unit_z`; ``tested``: clip_id, speaker, fold and the
    unit (:func:`~speechneurons.questions.tested_pairs`); ``labels``:
    :func:`chosen_for`. mean_rho, ci_low, ci_high: tanh of the mean
    speaker z and its 95 % t interval; t, p: one-sample t over speakers; q:
    BH over the units of one measure; partial_*: the same with intensity
    held fixed; follows: q < ``alpha``. A measure no clip of the unit has
    (the F0 slope of segments under three frames) gives no row.
    """
    data = tested[["clip_id", SPEAKER, "fold", *UNIT]].merge(z, on=["clip_id", *UNIT], how="inner")
    per_speaker = data.groupby(["fold", *UNIT, "measure", SPEAKER], sort=True, observed=True)[["z", "partial_z"]].mean()
    n_clips = data.groupby(["fold", *UNIT, "measure"], sort=True, observed=True)["z"].count()
    rows = []
    for key, group in per_speaker.groupby(level=["fold", *UNIT, "measure"], sort=True, observed=True):
        marginal = speaker_t(group["z"].to_numpy())
        partial = speaker_t(group["partial_z"].to_numpy())
        if marginal["n"] == 0:  # no clip has the measure (an F0 slope needs 3 voiced frames a segment)
            continue
        rows.append({**dict(zip(["fold", *UNIT, "measure"], key)), "n_clips": int(n_clips[key]),
                     "n_speakers": marginal["n"], "mean_rho": np.tanh(marginal["mean"]),
                     "ci_low": np.tanh(marginal["low"]), "ci_high": np.tanh(marginal["high"]),
                     "t": marginal["t"], "p": marginal["p"], "partial_rho": np.tanh(partial["mean"]),
                     "partial_t": partial["t"], "partial_p": partial["p"]})
    if not rows:
        return pd.DataFrame(columns=UNIT_COLUMNS)
    out = pd.DataFrame(rows).merge(labels, on=["fold", *UNIT], how="left")
    for column in ("q", "partial_q"):
        out[column] = np.nan
    for _, index in out.groupby("measure", observed=True).groups.items():
        out.loc[index, "q"] = bh(out.loc[index, "p"].to_numpy(dtype=float))
        out.loc[index, "partial_q"] = bh(out.loc[index, "partial_p"].to_numpy(dtype=float))
    out["follows"] = out["q"] < alpha
    return out[UNIT_COLUMNS]


def layer_table(z: pd.DataFrame, tested: pd.DataFrame, labels: pd.DataFrame, units: pd.DataFrame
                ) -> pd.DataFrame:
    """Per (site, layer, chosen_for, measure): how the layer's units, as a group, follow a measure.

    Per speaker, the mean z over the (clip, unit) pairs of the group tested
    on that speaker's clips (each cross-fitted unit on the speakers that did
    not choose it); mean_rho, ci_low, ci_high, t, p over speakers as in
    :func:`unit_table`; q: BH over the table's rows. n_units, n_following,
    share_following: how many of the group's units :func:`unit_table`
    finds (q below its alpha), in either direction.
    """
    data = (tested[["clip_id", SPEAKER, "fold", *UNIT]].merge(z, on=["clip_id", *UNIT], how="inner")
            .merge(labels, on=["fold", *UNIT], how="left"))
    keys = ["site", "layer", "chosen_for", "measure"]
    per_speaker = data.groupby([*keys, SPEAKER], sort=True, observed=True)[["z", "partial_z"]].mean()
    counts = units.groupby(keys, sort=True, observed=True).agg(n_units=("follows", "size"), n_following=("follows", "sum"))
    rows = []
    for key, group in per_speaker.groupby(level=keys, sort=True, observed=True):
        marginal = speaker_t(group["z"].to_numpy())
        partial = speaker_t(group["partial_z"].to_numpy())
        if marginal["n"] == 0:
            continue
        n_units, n_following = counts.loc[key] if key in counts.index else (0, 0)
        rows.append({**dict(zip(keys, key)), "n_units": int(n_units), "n_following": int(n_following),
                     "share_following": n_following / n_units if n_units else np.nan,
                     "n_speakers": marginal["n"], "mean_rho": np.tanh(marginal["mean"]),
                     "ci_low": np.tanh(marginal["low"]), "ci_high": np.tanh(marginal["high"]),
                     "t": marginal["t"], "p": marginal["p"], "partial_rho": np.tanh(partial["mean"]),
                     "partial_ci_low": np.tanh(partial["low"]), "partial_ci_high": np.tanh(partial["high"]),
                     "partial_p": partial["p"]})
    if not rows:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    out = pd.DataFrame(rows)
    out["q"] = bh(out["p"].to_numpy(dtype=float))
    out["partial_q"] = bh(out["partial_p"].to_numpy(dtype=float))
    return out[LAYER_COLUMNS]


def unit_prosody(curves: Iterable[Curve], prosody: ProsodyTracks, tested: pd.DataFrame,
                 selected: pd.DataFrame, spec: CorpusSpec, alpha: float) -> dict[str, pd.DataFrame]:
    """The two tables of this analysis: ``prosody_units`` (:func:`unit_table`) and
    ``prosody_layers`` (:func:`layer_table`), from the clips' curves cut to the tested (clip,
    unit) pairs (``tested``: :func:`~speechneurons.questions.tested_pairs`)."""
    z = clip_unit_z(tested_curves(curves, tested), prosody)
    labels = chosen_for(selected, spec.target)
    units = unit_table(z, tested, labels, alpha)
    return {"prosody_units": units, "prosody_layers": layer_table(z, tested, labels, units)}
