"""The original guide's five research questions, one table each, in the corpus's own factors.

1. Layer specialisation: per (site, layer) and factor, the share of units
   selective for that factor and the median effect sizes.
2. Target encoding: the cross-fitted units per level of the target factor,
   their attribution and activation contrasts on the speakers that did not
   choose them.
3. Temporal patterns: attribution profiles over normalised clip time,
   relative to voicing onset and offset (Praat's first and last voiced
   frame) and around pitch accents (local F0 maxima), per target level, with
   95 % bands over speakers; the share of attribution in loud versus quiet
   segments; and which acoustic measures each unit's attribution follows
   (:mod:`speechneurons.unit_prosody`).
4. Group differences: per unit, contrasts of the between-speaker group
   factor's two levels (second - first) in attribution and activation, with
   the speaker as the unit of replication.
5. Graded effects: high - low level of the graded factor, paired within
   speaker and the other within-speaker factors, tested over speakers.

A question whose factor the corpus lacks gives an empty table and a note
that says so. Every test here treats the speaker as the independent unit,
and q-values are Benjamini-Hochberg across the units of one table.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from scipy import stats

from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.prosody import ClipEvents, ProsodyTracks
from speechneurons.schemas import UNIT, current_names, unit_rows
from speechneurons.time_grid import overlap_weights
from speechneurons.stats.oneway import cohens_d
from speechneurons.stats.fdr import bh
from speechneurons.stats.intervals import bounded_interval
from speechneurons.stats.repeated import level_contrasts
from speechneurons.stats.selectivity import speaker_rows, speaker_test

ALIGNMENTS = {
    # alignment -> (bin edges in its own unit, what the unit is)
    "normalised": (np.linspace(0.0, 1.0, 21), "fraction of the clip"),
    "onset": (np.round(np.arange(-0.5, 1.5001, 0.1), 3), "seconds from voicing onset (first voiced frame)"),
    "offset": (np.round(np.arange(-1.5, 0.5001, 0.1), 3), "seconds from voicing offset (last voiced frame)"),
    "accent": (np.round(np.arange(-0.5, 0.5001, 0.05), 3), "seconds from a pitch accent (local F0 maximum)"),
}
#: A clip's curve of one (clip, units, [units, segments] attributions, segments), as the store yields it.
Curve = tuple[str, pd.DataFrame, np.ndarray, pd.DataFrame]


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
    """Per-model tables (layer_specialisation, probes) as one table with a ``model`` column."""
    frames = [table.assign(model=name) for name, table in tables.items() if not table.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "site", "layer", "factor", "share_selective", "median_eta2"])


# 2 ----------------------------------------------------------------------------

def tested_pairs(clip_units: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """The (clip, unit) rows a test may use, each with the ``fold`` whose selection it tests.

    A ``cross_fit`` unit of fold f is tested on the clips of f's held-out
    speakers only (fold f); an explicit or random-control unit, chosen on no
    speaker's data, on every clip (fold -1). A unit chosen only by the
    study-wide ``top_k`` (on every speaker) is in no test.
    """
    speakers = clip_units[SPEAKER].astype(str)
    parts = []
    cross = selected[selected["reason"] == "cross_fit"]
    for fold, rows in cross.groupby("fold", sort=True):
        held = set(rows["held_out"].iloc[0])
        units = rows[UNIT].drop_duplicates()
        mine = clip_units[speakers.isin(held).to_numpy()].merge(units, on=UNIT, how="inner")
        parts.append(mine.assign(fold=int(fold)))
    unchosen = selected.loc[selected["reason"].isin(["explicit", "random_control"]), UNIT].drop_duplicates()
    parts.append(clip_units.merge(unchosen, on=UNIT, how="inner").assign(fold=-1))
    return pd.concat(parts, ignore_index=True) if parts else clip_units.iloc[:0].assign(fold=-1)


def paired_level_contrast(values: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, level
                          ) -> np.ndarray:
    """[speakers] per speaker, ``level``'s cell minus the mean of its other cells of the target
    factor (cells adjusted for the other within-speaker factors, as the speaker-general test
    adjusts them; :func:`~speechneurons.stats.repeated.level_contrasts`); speakers without the
    level or another are left out."""
    rows, _ = speaker_rows(meta, spec, spec.target)
    order = [lv for lv in spec.levels(spec.target) if lv in set(meta[spec.target])]
    if level not in order or len(order) < 2:
        return np.array([])
    return level_contrasts(rows.values(values[:, None]), rows, order.index(level))[:, 0]


def held_out_selectivity(selected: pd.DataFrame, activations: pd.DataFrame, clips: pd.DataFrame,
                         spec: CorpusSpec) -> pd.DataFrame:
    """Per ``cross_fit`` (fold, unit): the target factor's speaker-general test of its pooled
    activation on the fold's held-out speakers only (the speakers that did not choose it).

    ``activations``: clip_id, site, layer, neuron, value. Columns fold, site,
    layer, neuron, heldout_F, heldout_p (the parametric p of
    :func:`~speechneurons.stats.selectivity.speaker_test`), heldout_speakers;
    NaN where the held-out speakers leave no test.
    """
    columns = ["fold", *UNIT, "heldout_F", "heldout_p", "heldout_speakers"]
    cross = selected[selected["reason"] == "cross_fit"]
    parts = []
    for fold, rows in cross.groupby("fold", sort=True):
        held = set(rows["held_out"].iloc[0])
        units = rows[UNIT].drop_duplicates()
        mine = activations.merge(units, on=UNIT, how="inner")
        meta = clips[clips[SPEAKER].astype(str).isin(held)]
        wide = (mine[mine["clip_id"].isin(meta["clip_id"])]
                .pivot_table(index="clip_id", columns=UNIT, values="value", aggfunc="first"))
        if wide.empty:
            continue
        meta = meta.set_index("clip_id").loc[wide.index].reset_index()
        test, _ = speaker_test(wide.to_numpy(dtype=float), meta, spec, spec.target, 0, 0)
        parts.append(pd.DataFrame({
            "fold": int(fold), **{c: wide.columns.get_level_values(c) for c in UNIT},
            "heldout_F": test["F_speaker"], "heldout_p": test["p_speaker"],
            "heldout_speakers": int(test["n_speakers_tested"])}))
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def target_encoding(selected: pd.DataFrame, clip_units: pd.DataFrame, spec: CorpusSpec,
                    activations: pd.DataFrame | None = None, clips: pd.DataFrame | None = None
                    ) -> pd.DataFrame:
    """The cross-fitted units per target level, tested on the speakers that did not choose them.

    One row per ``cross_fit`` row of ``selected`` (fold, level, unit), on the
    clips of that fold's held-out speakers: attribution_dz, t and p of the
    paired within-speaker contrast (per speaker, the level's cell of per-clip
    total attribution minus the mean of its other cells, cells adjusted for
    the other within-speaker factors; one-sample t over the held-out
    speakers); attribution_q: BH over rows; attribution_d: the clip-level
    one-vs-rest d on those clips (descriptive). ``activation_score`` is the
    selection's score on the training speakers and ``train_q_speaker`` /
    ``train_selective`` its speaker-general evidence there. ``heldout_F``,
    ``heldout_p`` and ``heldout_q`` (BH over rows): the target factor's
    speaker-general test of the unit's activation on the held-out speakers
    (:func:`held_out_selectivity`; ``activations`` and ``clips`` given).
    No column is computed on the speakers that chose the unit, except the
    ``activation_score`` and ``train_`` evidence of the choice itself.
    """
    target = spec.target
    top = selected[selected["reason"] == "cross_fit"]
    tested = tested_pairs(clip_units, selected)
    rows = []
    for row in top.itertuples(index=False):
        unit_clips = unit_rows(tested[tested["fold"] == row.fold], row.site, row.layer, row.neuron)
        level = getattr(row, target)
        inside = (unit_clips[target] == level).to_numpy()
        totals = unit_clips["total"].to_numpy(dtype=float)
        contrast = (paired_level_contrast(totals, unit_clips.reset_index(drop=True), spec, level)
                    if len(unit_clips) and spec.factor(target).varies == "within" else np.array([]))
        test = stats.ttest_1samp(contrast, 0.0) if len(contrast) > 1 and contrast.std() > 0 else None
        sd = contrast.std(ddof=1) if len(contrast) > 1 else np.nan
        rows.append({
            target: level, "fold": row.fold, "site": row.site, "layer": row.layer, "neuron": row.neuron,
            "rank": row.rank, "activation_score": row.score,
            "train_q_speaker": getattr(row, "q_speaker", np.nan),
            "train_selective": getattr(row, "selective", pd.NA),
            "n_speakers_tested": int(unit_clips[SPEAKER].nunique()),
            "n_clips_level": int(inside.sum()), "n_clips_other": int((~inside).sum()),
            "mean_total_level": float(totals[inside].mean()) if inside.any() else np.nan,
            "mean_total_other": float(totals[~inside].mean()) if (~inside).any() else np.nan,
            "attribution_d": _d(totals, inside),
            "attribution_dz": float(contrast.mean() / sd) if sd and sd > 0 else np.nan,
            "attribution_t": float(test.statistic) if test else np.nan,
            "attribution_p": float(test.pvalue) if test else np.nan,
            "mean_abs_mass": float(unit_clips["abs_mass"].mean()) if len(unit_clips) else np.nan,
            "mean_loud_share": float(unit_clips["loud_share"].mean()) if len(unit_clips) else np.nan,
            "mean_peak_time_s": float(unit_clips["peak_time_s"].mean()) if len(unit_clips) else np.nan,
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["attribution_q"] = bh(out["attribution_p"].to_numpy(dtype=float))
    if activations is None or clips is None:
        return out
    out = out.merge(held_out_selectivity(selected, activations, clips, spec), on=["fold", *UNIT],
                    how="left")
    out["heldout_q"] = bh(out["heldout_p"].to_numpy(dtype=float))
    return out


# 3 ----------------------------------------------------------------------------

def clip_profiles(curve: np.ndarray, segments: pd.DataFrame, events: ClipEvents | None
                  ) -> dict[str, np.ndarray]:
    """[units, segments] attributions -> per alignment, the share of |attribution| per bin.

    Each unit's absolute curve is normalised to sum 1 over the clip, then
    averaged over units; each segment's share is spread over the bins it
    overlaps, in proportion to the overlap, so profiles from 20 ms and
    1,000 ms segments are on one time grid. ``events``: the clip's voicing
    onset, offset and pitch accents (:class:`~speechneurons.prosody.ClipEvents`;
    None or NaN: the clip has no voiced frame, and only its normalised
    profile is drawn); the accent profile is the mean over the clip's
    accents of the shares around each. A profile says where in time the
    clip's attribution lies ([bins], NaN where no segment reaches a bin).
    """
    magnitude = np.abs(curve.astype(np.float64))
    totals = magnitude.sum(axis=1, keepdims=True)
    share = np.divide(magnitude, totals, out=np.zeros_like(magnitude), where=totals > 0)
    per_segment = share[(totals[:, 0] > 0)].mean(axis=0) if (totals > 0).any() else np.zeros(curve.shape[1])
    starts, ends = segments["start_s"].to_numpy(float), segments["end_s"].to_numpy(float)
    duration = float(ends.max())
    onset, offset = (events.voicing_onset_s, events.voicing_offset_s) if events else (np.nan, np.nan)
    accents = events.accents_s if events else np.array([])
    spans = {"normalised": [(starts / duration, ends / duration)], "onset": [(starts - onset, ends - onset)],
             "offset": [(starts - offset, ends - offset)],
             "accent": [(starts - t, ends - t) for t in accents] or [(starts * np.nan, ends * np.nan)]}
    out = {}
    for alignment, (edges, _) in ALIGNMENTS.items():
        profiles, reached = [], []
        for span in spans[alignment]:
            weights = np.nan_to_num(overlap_weights(*span, edges), nan=0.0)  # NaN spans weigh nothing
            profiles.append(per_segment @ weights)
            reached.append(weights.sum(axis=0) > 0)
        reached_any = np.any(reached, axis=0)
        counts = np.sum(reached, axis=0)
        total = np.sum(np.where(reached, profiles, 0.0), axis=0)
        out[alignment] = np.where(reached_any, total / np.maximum(counts, 1), np.nan)
    return out


def tested_curves(curves: Iterable[Curve], tested: pd.DataFrame) -> Iterator[Curve]:
    """``curves`` with each clip's units cut to the ones it may test (``tested``:
    :func:`tested_pairs`); a clip with none is left out."""
    allowed = tested.groupby("clip_id")[UNIT].apply(lambda u: set(map(tuple, u.to_numpy()))).to_dict()
    for clip_id, units, curve, segments in curves:
        keep = [tuple(u) in allowed.get(clip_id, set()) for u in units[UNIT].itertuples(index=False)]
        if any(keep):
            yield clip_id, units[keep].reset_index(drop=True), curve[np.flatnonzero(keep)], segments


def temporal_profiles(curves: Iterable[Curve], clips: pd.DataFrame, spec: CorpusSpec,
                      prosody: ProsodyTracks) -> pd.DataFrame:
    """Per (site, layer, target level, alignment, bin): mean share of attribution with a 95 % band.

    ``curves`` yields (clip_id, units table, [units, segments] array, that
    clip's segments); ``prosody`` gives each clip's voicing onset, offset and
    pitch accents (a clip without a track has only its normalised profile).
    Profiles are computed per (site, layer) of the ablated
    units and for all of them together (site ``all``, layer -1); clips are
    averaged per speaker first, and the band is a logit interval over speakers (it stays in [0, 1]).
    """
    target = spec.target
    meta = clips.set_index("clip_id")
    records = []
    for clip_id, units, curve, segments in curves:
        events = prosody.events(clip_id)
        groups = [("all", -1, np.arange(len(units)))]
        groups += [(s, int(k), idx.to_numpy()) for (s, k), idx in
                   units.reset_index(drop=True).groupby(["site", "layer"]).groups.items()]
        for site, layer, index in groups:
            for alignment, profile in clip_profiles(curve[index], segments, events).items():
                records.append((clip_id, site, layer, alignment, profile))
    rows = []
    frame = pd.DataFrame(records, columns=["clip_id", "site", "layer", "alignment", "profile"])
    if frame.empty:
        return pd.DataFrame(columns=["site", "layer", target, "alignment", "bin", "bin_start",
                                     "bin_end", "bin_unit", "n_clips", "n_speakers", "mean_share",
                                     "ci_low", "ci_high"])
    frame[target] = meta.loc[frame["clip_id"], target].to_numpy()
    frame[SPEAKER] = meta.loc[frame["clip_id"], SPEAKER].to_numpy()
    for (site, layer, level, alignment), group in frame.groupby(["site", "layer", target, "alignment"]):
        edges, unit = ALIGNMENTS[alignment]
        stacked = np.vstack(group["profile"].to_numpy())
        by_speaker = pd.DataFrame(stacked).groupby(group[SPEAKER].to_numpy()).mean().to_numpy()
        for b in range(len(edges) - 1):
            shares = by_speaker[:, b][~np.isnan(by_speaker[:, b])]
            mean = float(shares.mean()) if len(shares) else np.nan
            low, high = bounded_interval(shares)
            rows.append({"site": site, "layer": layer, target: level, "alignment": alignment,
                         "bin": b, "bin_start": edges[b], "bin_end": edges[b + 1], "bin_unit": unit,
                         "n_clips": int((~np.isnan(stacked[:, b])).sum()),
                         "n_speakers": int((~np.isnan(by_speaker[:, b])).sum()),
                         "mean_share": mean, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def loudness_table(clip_units: pd.DataFrame, spec: CorpusSpec) -> pd.DataFrame:
    """Per (site, layer, target level): share of attribution in loud segments against their share of time.

    enrichment = loud_share - loud_time_share per clip; tested with a
    one-sample t-test on speaker means (speaker as unit); q: BH over rows.
    """
    target = spec.target
    data = clip_units.assign(enrichment=clip_units["loud_share"] - clip_units["loud_time_share"])
    rows = []
    for (site, layer, level), group in data.groupby(["site", "layer", target], sort=True):
        speaker_means = group.groupby(SPEAKER)["enrichment"].mean().dropna().to_numpy()
        test = stats.ttest_1samp(speaker_means, 0.0) if len(speaker_means) > 1 else None
        rows.append({"site": site, "layer": layer, target: level,
                     "n_clips": len(group["clip_id"].unique()), "n_speakers": len(speaker_means),
                     "mean_loud_share": group["loud_share"].mean(),
                     "mean_loud_time_share": group["loud_time_share"].mean(),
                     "enrichment": float(speaker_means.mean()) if len(speaker_means) else np.nan,
                     "t": float(test.statistic) if test else np.nan,
                     "p": float(test.pvalue) if test else np.nan})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["q"] = bh(out["p"].to_numpy(dtype=float))
    return out


# 4 ----------------------------------------------------------------------------

def group_levels(clip_units: pd.DataFrame, spec: CorpusSpec) -> tuple[list, str | None]:
    """The two levels question 4 contrasts (second - first), or ([], why not)."""
    if spec.group is None:
        return [], f"question 4 is not asked: corpus {spec.name} has no between-speaker group factor"
    present = [level for level in spec.levels(spec.group) if level in set(clip_units[spec.group])]
    if len(present) != 2:
        return [], (f"question 4 is not asked: the clips hold {len(present)} level(s) of "
                    f"{spec.group} ({', '.join(map(str, present)) or 'none known'}); the contrast needs two")
    return present, None


def _welch(a: np.ndarray, b: np.ndarray):
    return stats.ttest_ind(a, b, equal_var=False) if len(a) > 1 and len(b) > 1 else None


def group_contrasts(clip_units: pd.DataFrame, activations: pd.DataFrame, spec: CorpusSpec
                    ) -> tuple[pd.DataFrame, str | None]:
    """Per tested (fold, unit): contrast of the group factor's two levels (second - first), over speakers.

    ``clip_units``: :func:`tested_pairs` (each unit on the speakers that did
    not choose it); ``activations``: clip_id, site, layer, neuron, value.
    Attribution: each speaker's mean per-clip total; activation: each
    speaker's mean pooled activation. For each, the difference of the two
    groups' speaker means, Cohen's d over speakers, and Welch's t-test over
    speakers (groups of speakers differ in size and spread in most corpora;
    Welch 1947): p, BH q over rows. Returns (table, why the question is not
    asked, or None); the table is empty when it is not.
    """
    levels, why = group_levels(clip_units, spec)
    if why:
        return pd.DataFrame(columns=["fold", *UNIT, "contrast"]), why
    group = spec.group
    first, second = levels
    data = clip_units.merge(activations.rename(columns={"value": "activation"}),
                            on=["clip_id", *UNIT], how="left")
    rows = []
    for (fold, site, layer, neuron), rows_of_unit in data.groupby(["fold", *UNIT], sort=True):
        speakers = rows_of_unit.groupby(SPEAKER).agg(total=("total", "mean"),
                                                     activation=("activation", "mean"),
                                                     level=(group, "first"))
        known = speakers["level"].isin(levels).to_numpy()
        is_second = (speakers["level"] == second).to_numpy()
        row = {"fold": fold, "site": site, "layer": layer, "neuron": neuron,
               "contrast": f"{second} - {first}",
               f"n_speakers_{second}": int(is_second.sum()),
               f"n_speakers_{first}": int((speakers["level"] == first).sum())}
        for measure in ("attribution", "activation"):
            values = speakers["total" if measure == "attribution" else "activation"].to_numpy(dtype=float)
            a, b = values[is_second], values[known & ~is_second]
            test = _welch(a, b)
            row.update({f"{measure}_{second}": float(a.mean()) if len(a) else np.nan,
                        f"{measure}_{first}": float(b.mean()) if len(b) else np.nan,
                        f"{measure}_diff": (a.mean() - b.mean()) if len(a) and len(b) else np.nan,
                        f"{measure}_d": _d(values[known], is_second[known]),
                        f"{measure}_t": float(test.statistic) if test else np.nan,
                        f"{measure}_p": float(test.pvalue) if test else np.nan})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out, None
    for measure in ("attribution", "activation"):
        out[f"{measure}_q"] = bh(out[f"{measure}_p"].to_numpy(dtype=float))
    return out, None


# 5 ----------------------------------------------------------------------------

GRADED_COLUMNS = ["measure", "fold", *UNIT, "contrast", "n_pairs", "n_speakers", "mean_diff", "dz", "t", "p", "q"]


def graded_effects(measures: pd.DataFrame, spec: CorpusSpec) -> tuple[pd.DataFrame, str | None]:
    """High - low level of the graded factor, paired within speaker and the other within-speaker
    factors, tested over speakers.

    ``measures``: one row per (clip, unit) with clip_id, speaker, every
    within-speaker factor, fold (:func:`tested_pairs`), site, layer, neuron,
    measure (``attribution`` or ``activation``) and value. Clips are averaged per cell; each (speaker,
    other within-speaker levels) with both graded levels gives one
    difference; differences are averaged per speaker and a one-sample
    t-test over speakers gives t and p; dz = mean / sd of the speaker
    differences; q: BH per measure. Returns (table, why the table is empty: the
    question is not asked or no speaker has a pair; None when it is not).
    """
    if spec.graded is None:
        return pd.DataFrame(columns=GRADED_COLUMNS), f"question 5 is not asked: corpus {spec.name} has no graded factor"
    graded, low, high = spec.graded
    pairing = [f for f in spec.within() if f != graded]
    cells = (measures.groupby(["measure", "fold", *UNIT, SPEAKER, *pairing, graded], dropna=False)["value"]
             .mean().unstack(graded))
    if not {low, high} <= set(cells.columns):
        return (pd.DataFrame(columns=GRADED_COLUMNS),
                f"question 5 is not asked: the clips lack {graded} {high if low in cells.columns else low}")
    cells = cells.dropna(subset=[low, high])
    cells["diff"] = cells[high] - cells[low]
    rows = []
    for (measure, fold, site, layer, neuron), group in cells.groupby(level=["measure", "fold", *UNIT],
                                                                     sort=True):
        per_speaker = group["diff"].groupby(level=SPEAKER).mean().to_numpy()
        test = stats.ttest_1samp(per_speaker, 0.0) if len(per_speaker) > 1 else None
        sd = per_speaker.std(ddof=1) if len(per_speaker) > 1 else np.nan
        rows.append({"measure": measure, "fold": fold, "site": site, "layer": layer, "neuron": neuron,
                     "contrast": f"{high} - {low}", "n_pairs": len(group),
                     "n_speakers": len(per_speaker), "mean_diff": float(per_speaker.mean()),
                     "dz": float(per_speaker.mean() / sd) if sd and sd > 0 else np.nan,
                     "t": float(test.statistic) if test else np.nan,
                     "p": float(test.pvalue) if test else np.nan})
    if not rows:  # no speaker has a cell with both levels
        return pd.DataFrame(columns=GRADED_COLUMNS), (
            f"question 5: no speaker recorded both {graded} {low} and {high} with the same "
            f"{', '.join(pairing) or 'design'}")
    out = pd.DataFrame(rows)
    out["q"] = np.nan
    for measure, index in out.groupby("measure").groups.items():
        out.loc[index, "q"] = bh(out.loc[index, "p"].to_numpy(dtype=float))
    return out[GRADED_COLUMNS], None


def best_unit_values(selected: pd.DataFrame, matrix, clips: pd.DataFrame, label,
                     spec: CorpusSpec) -> pd.DataFrame:
    """Per target level, its strongest top unit's activation on every clip (for the distributions
    figure). Columns unit (``label(site, layer, neuron)`` and the level), the target factor, the
    group factor (when the corpus has one), value.
    """
    target = spec.target
    columns = [c for c in (target, spec.group) if c is not None]
    best = (selected[selected["reason"] == "top_k"].sort_values("score", ascending=False)
            .groupby(target, sort=False).head(1))
    if best.empty:
        return pd.DataFrame(columns=["unit", *columns, "value"])
    meta = clips.set_index("clip_id").loc[matrix.clip_ids]
    return pd.concat([
        pd.DataFrame({"unit": f"{label(row.site, row.layer, row.neuron)} (top for {row[target]})",
                      **{c: meta[c].to_numpy() for c in columns},
                      "value": matrix.values[:, matrix.column(row.site, row.layer, row.neuron)]})
        for _, row in best.iterrows()
    ], ignore_index=True)


def graded_measures(clip_units: pd.DataFrame, activations: pd.DataFrame, spec: CorpusSpec
                    ) -> pd.DataFrame:
    """Long (clip, unit, measure) values for :func:`graded_effects`.

    attribution: the clip's total attribution; activation: its pooled mean
    activation (``activations``: clip_id, site, layer, neuron, value), for
    the (clip, unit) rows of ``clip_units`` (:func:`tested_pairs`).
    """
    keys = ["clip_id", SPEAKER, *spec.within(), "fold"]
    attribution = clip_units[keys + UNIT + ["total"]].rename(columns={"total": "value"})
    activation = activations.merge(clip_units[keys + UNIT], on=["clip_id", *UNIT], how="inner")
    return pd.concat([attribution.assign(measure="attribution"),
                      activation.assign(measure="activation")], ignore_index=True)


def answer_questions(clips: pd.DataFrame, selected: pd.DataFrame,
                     clip_units: pd.DataFrame, curves: Iterable[Curve], activations: pd.DataFrame,
                     spec: CorpusSpec, prosody: ProsodyTracks
                     ) -> tuple[dict[str, pd.DataFrame], dict[str, list[str]], dict[str, str]]:
    """The tables of questions 2-5 for one ablation parameter combination; per table the notes
    on what the corpus or the clips cannot answer (each table carries its own); and per table
    that is empty because its question cannot be answered, why (its figure says so instead).

    Every test uses only (clip, unit) pairs whose clip's speaker did not
    choose the unit (:func:`tested_pairs`); temporal profiles and loudness
    pool each clip's tested units; ``prosody`` places the profiles around
    each clip's voicing onset, offset and pitch accents.
    """
    tested = tested_pairs(current_names(clip_units), selected)
    pooled = tested.drop_duplicates(["clip_id", *UNIT])
    groups, groups_unanswered = group_contrasts(tested, activations, spec)
    graded, graded_unanswered = graded_effects(graded_measures(tested, activations, spec), spec)
    tables = {
        "target_encoding": target_encoding(selected, clip_units, spec, activations, clips),
        "temporal_profiles": temporal_profiles(tested_curves(curves, tested), clips, spec, prosody),
        "loudness": loudness_table(pooled, spec),
        "group_contrasts": groups,
        "graded_effects": graded,
    }
    unanswered = {name: why for name, why in (("group_contrasts", groups_unanswered),
                                              ("graded_effects", graded_unanswered)) if why}
    notes: dict[str, list[str]] = {name: [unanswered[name]] if name in unanswered else [] for name in tables}
    if (selected["reason"] == "top_k").any() and not (selected["reason"] == "cross_fit").any():
        for name in tables:
            notes[name].append("questions 2-5: no cross_fit unit was selected, so the units chosen on "
                               "every speaker are in no test (only explicit units and random controls are)")
    missing = sorted(set(clips["clip_id"]) - {c for c in clips["clip_id"] if c in prosody})
    if missing:
        notes["temporal_profiles"].append(
            f"{len(missing)} clip(s) have no prosody track (see failed clips), so only their normalised "
            f"profile counts: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return tables, notes, unanswered
