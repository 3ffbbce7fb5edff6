"""The seed guide's five research questions, one table each.

1. Layer specialisation: per (site, layer) and factor, the share of units
   selective for that factor and the median effect sizes.
2. Emotion encoding: the top units per emotion, their selectivity and their
   ablation attribution summaries.
3. Temporal patterns: attribution profiles over normalised clip time and
   relative to speech onset and offset, per emotion, with 95 % bands over
   actors; and the share of attribution in voiced versus silent segments.
4. Gender differences: per unit, female - male contrasts of attribution and
   activation, with the actor as the unit of replication.
5. Intensity effects: strong - normal, paired within actor, statement and
   emotion, tested over actors.

Every test here treats the actor as the independent unit (RAVDESS has 24),
and q-values are Benjamini-Hochberg across the units of one table.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from speechneurons.stats.oneway import cohens_d
from speechneurons.stats.selectivity import bh

UNIT = ["site", "layer", "neuron"]
ALIGNMENTS = {
    # alignment -> (bin edges in its own unit, what the unit is)
    "normalised": (np.linspace(0.0, 1.0, 21), "fraction of the clip"),
    "onset": (np.round(np.arange(-0.5, 1.5001, 0.1), 3), "seconds from speech onset"),
    "offset": (np.round(np.arange(-1.5, 0.5001, 0.1), 3), "seconds from speech offset"),
}


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of independent values (NaN band with fewer than two)."""
    values = values[~np.isnan(values)]
    mean = float(values.mean()) if len(values) else np.nan
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def _d(values: np.ndarray, in_group: np.ndarray) -> float:
    """Cohen's d of one variable (in_group - rest); NaN with fewer than two on a side or no spread."""
    if in_group.sum() < 2 or (~in_group).sum() < 2:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        d = float(cohens_d(values[:, None], in_group)[0])
    return d if np.isfinite(d) else np.nan


# 1 ----------------------------------------------------------------------------

def layer_specialisation(selectivity: pd.DataFrame) -> pd.DataFrame:
    """Per (site, layer, factor): n_units, n_selective, share_selective, median effect sizes."""
    grouped = selectivity.groupby(["site", "layer", "factor"], sort=True)
    out = grouped.agg(
        n_units=("neuron", "size"),
        n_selective=("selective", "sum"),
        median_eta2=("eta2", "median"),
        median_omega2=("omega2", "median"),
        median_F_speaker=("F_speaker", "median"),
        median_abs_cohens_d=("cohens_d", lambda d: d.abs().median()),
        max_eta2=("eta2", "max"),
    ).reset_index()
    out["share_selective"] = out["n_selective"] / out["n_units"]
    return out


def models_by_layer(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The layer_specialisation tables of several models, one table with a ``model`` column."""
    frames = [table.assign(model=name) for name, table in tables.items() if not table.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "site", "layer", "factor", "share_selective", "median_eta2"])


# 2 ----------------------------------------------------------------------------

def emotion_encoding(selected: pd.DataFrame, selectivity: pd.DataFrame,
                     clip_units: pd.DataFrame) -> pd.DataFrame:
    """The top units per emotion with their selectivity and attribution summaries.

    attribution_d: Cohen's d of the unit's per-clip total attribution on
    clips of that emotion against the other clips (positive: the emotion's
    clips drive the unit more); attribution_p: Welch t-test on actor means
    of the two groups (actor as unit of replication); attribution_q: BH over rows.
    """
    top = selected[selected["reason"] == "top_k"]
    emotion_stats = selectivity[selectivity["factor"] == "emotion"][
        UNIT + ["eta2", "F_speaker", "p_speaker", "q_speaker", "p_perm", "selective"]]
    rows = []
    for row in top.itertuples(index=False):
        unit_clips = clip_units[(clip_units["site"] == row.site) & (clip_units["layer"] == row.layer)
                                & (clip_units["neuron"] == row.neuron)]
        inside = unit_clips["emotion"] == row.emotion
        a, b = unit_clips.loc[inside, "total"].to_numpy(), unit_clips.loc[~inside, "total"].to_numpy()
        actor_a = unit_clips[inside].groupby("actor")["total"].mean().to_numpy()
        actor_b = unit_clips[~inside].groupby("actor")["total"].mean().to_numpy()
        p = (stats.ttest_ind(actor_a, actor_b, equal_var=False).pvalue
             if len(actor_a) > 1 and len(actor_b) > 1 else np.nan)
        rows.append({
            "emotion": row.emotion, "site": row.site, "layer": row.layer, "neuron": row.neuron,
            "rank": row.rank, "activation_d": row.score,
            "n_clips_emotion": int(inside.sum()), "n_clips_other": int((~inside).sum()),
            "mean_total_emotion": float(a.mean()) if len(a) else np.nan,
            "mean_total_other": float(b.mean()) if len(b) else np.nan,
            "attribution_d": _d(unit_clips["total"].to_numpy(), inside.to_numpy()),
            "attribution_p": p,
            "mean_abs_mass": float(unit_clips["abs_mass"].mean()) if len(unit_clips) else np.nan,
            "mean_voiced_share": float(unit_clips["voiced_share"].mean()) if len(unit_clips) else np.nan,
            "mean_peak_time_s": float(unit_clips["peak_time_s"].mean()) if len(unit_clips) else np.nan,
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["attribution_q"] = bh(out["attribution_p"].to_numpy(dtype=float))
    return out.merge(emotion_stats, on=UNIT, how="left")


# 3 ----------------------------------------------------------------------------

def speech_bounds(segments: pd.DataFrame) -> tuple[float, float]:
    """Speech onset and offset of one clip: the first and last voiced segment (NaN if none)."""
    voiced = segments[segments["voiced"]]
    if voiced.empty:
        return np.nan, np.nan
    return float(voiced["start_s"].min()), float(voiced["end_s"].max())


def clip_profiles(curve: np.ndarray, segments: pd.DataFrame) -> dict[str, np.ndarray]:
    """[units, segments] attributions -> per alignment, the share of |attribution| per bin.

    Each unit's absolute curve is normalised to sum 1 over the clip, then
    averaged over units and summed into the alignment's bins: a profile
    says where in time the clip's attribution lies ([bins], NaN where no
    segment falls in a bin).
    """
    magnitude = np.abs(curve.astype(np.float64))
    totals = magnitude.sum(axis=1, keepdims=True)
    share = np.divide(magnitude, totals, out=np.zeros_like(magnitude), where=totals > 0)
    per_segment = share[(totals[:, 0] > 0)].mean(axis=0) if (totals > 0).any() else np.zeros(curve.shape[1])
    middle = ((segments["start_s"] + segments["end_s"]) / 2).to_numpy()
    duration = float(segments["end_s"].max())
    onset, offset = speech_bounds(segments)
    positions = {"normalised": middle / duration, "onset": middle - onset, "offset": middle - offset}
    out = {}
    for alignment, (edges, _) in ALIGNMENTS.items():
        where = np.digitize(positions[alignment], edges) - 1
        inside = (where >= 0) & (where < len(edges) - 1)
        profile = np.bincount(where[inside], weights=per_segment[inside], minlength=len(edges) - 1)
        counted = np.bincount(where[inside], minlength=len(edges) - 1)
        out[alignment] = np.where(counted > 0, profile, np.nan)
    return out


def temporal_profiles(curves: Iterable[tuple[str, pd.DataFrame, np.ndarray, pd.DataFrame]],
                      clips: pd.DataFrame) -> pd.DataFrame:
    """Per (site, layer, emotion, alignment, bin): mean share of attribution with a 95 % band.

    ``curves`` yields (clip_id, units table, [units, segments] array, that
    clip's segments). Profiles are computed per (site, layer) of the ablated
    units and for all of them together (site ``all``, layer -1); clips are
    averaged per actor first, and the band is a t-interval over actors.
    """
    meta = clips.set_index("clip_id")
    records = []
    for clip_id, units, curve, segments in curves:
        groups = [("all", -1, np.arange(len(units)))]
        groups += [(s, int(k), idx.to_numpy()) for (s, k), idx in
                   units.reset_index(drop=True).groupby(["site", "layer"]).groups.items()]
        for site, layer, index in groups:
            for alignment, profile in clip_profiles(curve[index], segments).items():
                records.append((clip_id, site, layer, alignment, profile))
    rows = []
    frame = pd.DataFrame(records, columns=["clip_id", "site", "layer", "alignment", "profile"])
    if frame.empty:
        return pd.DataFrame(columns=["site", "layer", "emotion", "alignment", "bin", "bin_start",
                                     "bin_end", "bin_unit", "n_clips", "n_actors", "mean_share",
                                     "ci_low", "ci_high"])
    frame["emotion"] = meta.loc[frame["clip_id"], "emotion"].to_numpy()
    frame["actor"] = meta.loc[frame["clip_id"], "actor"].to_numpy()
    for (site, layer, emotion, alignment), group in frame.groupby(["site", "layer", "emotion", "alignment"]):
        edges, unit = ALIGNMENTS[alignment]
        stacked = np.vstack(group["profile"].to_numpy())
        by_actor = pd.DataFrame(stacked).groupby(group["actor"].to_numpy()).mean().to_numpy()
        for b in range(len(edges) - 1):
            mean, low, high = _t_interval(by_actor[:, b])
            rows.append({"site": site, "layer": layer, "emotion": emotion, "alignment": alignment,
                         "bin": b, "bin_start": edges[b], "bin_end": edges[b + 1], "bin_unit": unit,
                         "n_clips": int((~np.isnan(stacked[:, b])).sum()),
                         "n_actors": int((~np.isnan(by_actor[:, b])).sum()),
                         "mean_share": mean, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def voicing_table(clip_units: pd.DataFrame) -> pd.DataFrame:
    """Per (site, layer, emotion): share of attribution in voiced segments against their share of time.

    enrichment = voiced_share - voiced_time_share per clip; tested with a
    one-sample t-test on actor means (actor as unit); q: BH over rows.
    """
    data = clip_units.assign(enrichment=clip_units["voiced_share"] - clip_units["voiced_time_share"])
    rows = []
    for (site, layer, emotion), group in data.groupby(["site", "layer", "emotion"], sort=True):
        actor_means = group.groupby("actor")["enrichment"].mean().dropna().to_numpy()
        test = stats.ttest_1samp(actor_means, 0.0) if len(actor_means) > 1 else None
        rows.append({"site": site, "layer": layer, "emotion": emotion,
                     "n_clips": len(group["clip_id"].unique()), "n_actors": len(actor_means),
                     "mean_voiced_share": group["voiced_share"].mean(),
                     "mean_voiced_time_share": group["voiced_time_share"].mean(),
                     "enrichment": float(actor_means.mean()) if len(actor_means) else np.nan,
                     "t": float(test.statistic) if test else np.nan,
                     "p": float(test.pvalue) if test else np.nan})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["q"] = bh(out["p"].to_numpy(dtype=float))
    return out


# 4 ----------------------------------------------------------------------------

def gender_contrasts(clip_units: pd.DataFrame, selectivity: pd.DataFrame) -> pd.DataFrame:
    """Per ablated unit: female - male contrasts of attribution and activation, over actors.

    Attribution: each actor's mean per-clip total; difference of the female
    and male actor means, Cohen's d over actors, two-sample t-test over
    actors (p, BH q). Activation: the selectivity table's gender row (F on
    actor means, its p and q; cohens_d is female - male over clips).
    """
    rows = []
    for (site, layer, neuron), group in clip_units.groupby(UNIT, sort=True):
        actors = group.groupby("actor").agg(total=("total", "mean"), gender=("gender", "first"))
        female = actors.loc[actors["gender"] == "female", "total"].to_numpy()
        male = actors.loc[actors["gender"] == "male", "total"].to_numpy()
        ok = len(female) > 1 and len(male) > 1
        test = stats.ttest_ind(female, male) if ok else None
        rows.append({"site": site, "layer": layer, "neuron": neuron,
                     "n_actors_female": len(female), "n_actors_male": len(male),
                     "attribution_female": float(female.mean()) if len(female) else np.nan,
                     "attribution_male": float(male.mean()) if len(male) else np.nan,
                     "attribution_diff": (female.mean() - male.mean()) if len(female) and len(male) else np.nan,
                     "attribution_d": _d(actors["total"].to_numpy(), (actors["gender"] == "female").to_numpy()),
                     "attribution_t": float(test.statistic) if test else np.nan,
                     "attribution_p": float(test.pvalue) if test else np.nan})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["attribution_q"] = bh(out["attribution_p"].to_numpy(dtype=float))
    gender = selectivity[selectivity["factor"] == "gender"][UNIT + ["cohens_d", "F_speaker", "p_speaker", "q_speaker"]]
    gender = gender.rename(columns={"cohens_d": "activation_d", "F_speaker": "activation_F",
                                    "p_speaker": "activation_p", "q_speaker": "activation_q"})
    return out.merge(gender, on=UNIT, how="left")


# 5 ----------------------------------------------------------------------------

def intensity_effects(measures: pd.DataFrame) -> pd.DataFrame:
    """Strong - normal, paired within (actor, statement, emotion), tested over actors.

    ``measures``: one row per (clip, unit) with clip_id, actor, statement,
    emotion, intensity, site, layer, neuron, measure (e.g. ``attribution``
    or ``activation``) and value. Repetitions are averaged per cell; each
    (actor, statement, emotion) with both intensities gives one difference;
    differences are averaged per actor and a one-sample t-test over actors
    gives t and p; dz = mean / sd of the actor differences; q: BH per measure.
    """
    columns = ["measure", *UNIT, "n_pairs", "n_actors", "mean_diff", "dz", "t", "p", "q"]
    cells = (measures[measures["emotion"] != "neutral"]
             .groupby(["measure", *UNIT, "actor", "statement", "emotion", "intensity"])["value"]
             .mean().unstack("intensity"))
    if not {"strong", "normal"} <= set(cells.columns):
        return pd.DataFrame(columns=columns)
    cells = cells.dropna(subset=["strong", "normal"])
    cells["diff"] = cells["strong"] - cells["normal"]
    rows = []
    for (measure, site, layer, neuron), group in cells.groupby(level=["measure", *UNIT], sort=True):
        per_actor = group["diff"].groupby(level="actor").mean().to_numpy()
        test = stats.ttest_1samp(per_actor, 0.0) if len(per_actor) > 1 else None
        sd = per_actor.std(ddof=1) if len(per_actor) > 1 else np.nan
        rows.append({"measure": measure, "site": site, "layer": layer, "neuron": neuron,
                     "n_pairs": len(group), "n_actors": len(per_actor),
                     "mean_diff": float(per_actor.mean()),
                     "dz": float(per_actor.mean() / sd) if sd and sd > 0 else np.nan,
                     "t": float(test.statistic) if test else np.nan,
                     "p": float(test.pvalue) if test else np.nan})
    if not rows:  # no (actor, statement, emotion) has both intensities
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["q"] = np.nan
    for measure, index in out.groupby("measure").groups.items():
        out.loc[index, "q"] = bh(out.loc[index, "p"].to_numpy(dtype=float))
    return out


def best_unit_values(selected: pd.DataFrame, matrix, clips: pd.DataFrame, label) -> pd.DataFrame:
    """Per emotion, its strongest top unit's activation on every clip (for the distributions figure).

    Columns unit (``label(site, layer, neuron)`` and the emotion), emotion, gender, value.
    """
    best = (selected[selected["reason"] == "top_k"].sort_values("score", ascending=False)
            .groupby("emotion", sort=False).head(1))
    if best.empty:
        return pd.DataFrame(columns=["unit", "emotion", "gender", "value"])
    meta = clips.set_index("clip_id").loc[matrix.clip_ids]
    return pd.concat([
        pd.DataFrame({"unit": f"{label(row.site, row.layer, row.neuron)} (top for {row.emotion})",
                      "emotion": meta["emotion"].to_numpy(), "gender": meta["gender"].to_numpy(),
                      "value": matrix.values[:, matrix.column(row.site, row.layer, row.neuron)]})
        for row in best.itertuples(index=False)
    ], ignore_index=True)


def intensity_measures(clip_units: pd.DataFrame, activations: pd.DataFrame) -> pd.DataFrame:
    """Long (clip, unit, measure) values for :func:`intensity_effects`.

    attribution: the clip's total attribution; activation: its pooled mean
    activation (``activations``: clip_id, site, layer, neuron, value), for
    the ablated units only.
    """
    keys = ["clip_id", "actor", "statement", "emotion", "intensity"]
    attribution = clip_units[keys + UNIT + ["total"]].rename(columns={"total": "value"})
    activation = activations.merge(clip_units[keys + UNIT], on=["clip_id", *UNIT], how="inner")
    return pd.concat([attribution.assign(measure="attribution"),
                      activation.assign(measure="activation")], ignore_index=True)


def answer_questions(clips: pd.DataFrame, selectivity: pd.DataFrame, selected: pd.DataFrame,
                     clip_units: pd.DataFrame, curves: Iterable, activations: pd.DataFrame
                     ) -> dict[str, pd.DataFrame]:
    """The tables of questions 2-5 for one ablation parameter combination."""
    return {
        "emotion_encoding": emotion_encoding(selected, selectivity, clip_units),
        "temporal_profiles": temporal_profiles(curves, clips),
        "voicing": voicing_table(clip_units),
        "gender_contrasts": gender_contrasts(clip_units, selectivity),
        "intensity_effects": intensity_effects(intensity_measures(clip_units, activations)),
    }
