"""Selectivity of every unit for every factor, with speaker-general significance.

For each unit and factor of the corpus's spec: descriptive statistics over
clips (F, Kruskal-Wallis, eta squared, omega squared, Cohen's d, the preferred level and its one-vs-rest d), and a
speaker-general test (:mod:`speechneurons.stats.repeated`): Hotelling's T^2
on each speaker's level contrasts for factors that vary within speakers,
Welch's F on speaker means for factors that vary between them, each with its
permutation p (sign flips; permuted speakers) and Benjamini-Hochberg
q-values across all units of the factor. The speaker-blocked F of clips
stays as a descriptive column (``F_within_speakers``): it asks whether
*these* speakers' clips differ. Units ranked on one half of the speakers
(balanced by the group factor) are tested on the other half: the
replication columns, and a mixed model with a random slope.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.mixed import SLOPE_MODEL, fit_mixed
from speechneurons.stats.oneway import cohens_d, kruskal, oneway
from speechneurons.stats.repeated import (HOTELLING, PAIRED_T, WELCH, Rows, blocked_f, clip_rows,
                                          speaker_general_test, speaker_means, within_speaker_cells)
from speechneurons.schemas import empty_table
from speechneurons.settings import FromConfig

log = logging.getLogger(__name__)

#: Columns and dtypes of ``selectivity.parquet`` (also of the empty table of a design too thin to test).
SELECTIVITY_SCHEMA = {
    "site": "str", "layer": "int32", "neuron": "int32", "factor": "str", "n_clips": "int64",
    "n_speakers": "int64", "n_levels": "int64", "F": "float64", "p_F": "float64",
    "kruskal_H": "float64", "p_kruskal": "float64", "eta2": "float64", "omega2": "float64",
    "cohens_d": "float64", "contrast": "str", "preferred_level": "str", "preference_d": "float64",
    "speaker_test": "str", "F_speaker": "float64", "df_speaker_num": "int32",
    "df_speaker_den": "int32", "n_speakers_tested": "int32", "p_speaker": "float64", "p_perm": "float64",
    "permutation_scheme": "str", "F_within_speakers": "float64", "p_within_speakers": "float64",
    "q_speaker": "float64", "q_perm": "float64", "selective": "bool", "eta2_half_a": "float64",
    "eta2_half_b": "float64", "selected_half_a": "bool", "p_perm_half_b": "float64",
    "q_half_b": "float64", "replicated": "bool", "mixed_p": "float64", "mixed_model": "str", "speaker_icc": "float64",
}
#: Columns and dtypes of ``replication.parquet``.
REPLICATION_SCHEMA = {
    "factor": "str", "speakers_half_a": "int64", "speakers_half_b": "int64", "n_significant_half_a": "int64", "n_selected": "int64",
    "n_replicated": "int64", "replication_rate": "float64", "spearman_eta2_halves": "float64",
}


@dataclass(frozen=True)
class StatsSettings(FromConfig):
    """The ``stats`` section of the config."""

    SECTION: ClassVar[str] = "stats"

    permutations: int = 1000
    fdr_alpha: float = 0.05
    seed: int = 0
    mixed_top_units: int = 10
    replication_top: int = 100


def _codes(meta: pd.DataFrame, spec: CorpusSpec, factor: str) -> tuple[np.ndarray, list]:
    order = [level for level in spec.levels(factor) if level in set(meta[factor])]
    lookup = {level: i for i, level in enumerate(order)}
    return meta[factor].map(lookup).to_numpy(), order


def within_factors(meta: pd.DataFrame, spec: CorpusSpec) -> list[str]:
    """The within-speaker factors with at least two levels in ``meta``."""
    return [f for f in spec.within() if meta[f].nunique() > 1]


def speaker_rows(meta: pd.DataFrame, spec: CorpusSpec, factor: str) -> tuple[Rows, str]:
    """The rows of the speaker-general test of ``factor`` and the test's name.

    Within-speaker factors: one cell per (speaker, level), adjusted inside
    each speaker for the other within-speaker factors. Between-speaker
    factors: one row per speaker.
    """
    codes, order = _codes(meta, spec, factor)
    speakers = meta[SPEAKER].to_numpy()
    if spec.factor(factor).varies == "between":
        return speaker_means(codes, len(order), speakers), WELCH
    others = [f for f in within_factors(meta, spec) if f != factor]
    nuisance = np.stack([pd.factorize(meta[f])[0] for f in others], axis=1) if others else None
    rows = within_speaker_cells(codes, len(order), speakers, nuisance)
    if rows.unadjusted:
        log.info("%s: cells of %d speakers are plain means (their %s could not be separated "
                 "from %s)", factor, len(rows.unadjusted), "/".join(others), factor)
    return rows, PAIRED_T if len(order) == 2 else HOTELLING


def ranking_f(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str) -> np.ndarray:
    """[units] the least-squares F of ``factor`` on the speaker rows (cells after speakers, or
    speaker means): a size to rank units by, defined with as few as two speakers; not a test."""
    rows, _ = speaker_rows(meta, spec, factor)
    return blocked_f(rows.values(x), rows).f


def speaker_test(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str,
                 permutations: int, seed: int) -> tuple[dict, str]:
    """The speaker-general test of ``factor`` for every column of x [clips, units]
    (:func:`speechneurons.stats.repeated.speaker_general_test`): columns and the test's name."""
    rows, _ = speaker_rows(meta, spec, factor)
    result = speaker_general_test(rows.values(x), rows, spec.factor(factor).varies == "within",
                                  permutations, seed)
    return {
        "F_speaker": result.f,
        "df_speaker_num": np.int32(result.df_num),
        "df_speaker_den": np.int32(result.df_den),
        "n_speakers_tested": np.int32(result.n_speakers),
        "p_speaker": result.p,
        "p_perm": result.p_perm,
        "speakers_left_out": result.left_out,
    }, result.name


def factor_statistics(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str,
                      settings: StatsSettings, seed_offset: int = 0) -> pd.DataFrame | None:
    """All statistics of one factor for every column of x [clips, units]; None if one level.

    Descriptive, over clips: F and p_F (naive: clips as if independent),
    Kruskal-Wallis, eta2, omega2, Cohen's d, preference, and for
    within-speaker factors the speaker-blocked F of clips (F_within_speakers).
    Speaker-general: F_speaker / p_speaker, p_perm and their BH q.
    ``selective``: q_speaker < alpha and p_perm < alpha.
    """
    codes, order = _codes(meta, spec, factor)
    if len(order) < 2:
        return None
    result = oneway(x, codes, len(order))
    h, p_h = kruskal(x, codes, len(order))
    d_each = np.stack([cohens_d(x, codes == level) for level in range(len(order))])
    preferred = np.argmax(np.where(np.isnan(result.level_means), -np.inf, result.level_means), axis=0)
    general, test_name = speaker_test(x, meta, spec, factor, settings.permutations,
                                      settings.seed + seed_offset)
    left_out = general.pop("speakers_left_out")
    if left_out:
        log.warning("%s: %d speaker(s) lack a level and are left out of its speaker-general test",
                    factor, left_out)
    within = spec.factor(factor).varies == "within"
    if within:
        blocked = blocked_f(x, clip_rows(codes, len(order), meta[SPEAKER].to_numpy()))
        f_within, p_within = blocked.f, blocked.p
    else:
        f_within = p_within = np.full(x.shape[1], np.nan)
    smallest_q = x.shape[1] / (settings.permutations + 1)
    if smallest_q >= settings.fdr_alpha:
        log.warning("%s: with %d permutations and %d units, q_perm cannot fall below %.3g; "
                    "q_speaker carries the FDR (raise stats.permutations to use q_perm)",
                    factor, settings.permutations, x.shape[1], smallest_q)
    table = pd.DataFrame({
        "factor": factor,
        "n_levels": len(order),
        "F": result.f,
        "p_F": result.p_f,
        "kruskal_H": h,
        "p_kruskal": p_h,
        "eta2": result.eta2,
        "omega2": result.omega2,
        "cohens_d": d_each[1] if len(order) == 2 else np.nan,
        "contrast": f"{order[1]} - {order[0]}" if len(order) == 2 else "",
        "preferred_level": [str(order[i]) for i in preferred],
        "preference_d": d_each[preferred, np.arange(x.shape[1])],
        "speaker_test": test_name,
        **general,
        "permutation_scheme": "signs of each speaker's level contrasts flipped" if within
                              else "speakers' labels permuted (Welch statistic)",
        "F_within_speakers": f_within,
        "p_within_speakers": p_within,
    })
    table["q_speaker"] = bh(table["p_speaker"].to_numpy())
    table["q_perm"] = bh(table["p_perm"].to_numpy())
    table["selective"] = (table["q_speaker"] < settings.fdr_alpha) & (table["p_perm"] < settings.fdr_alpha)
    return table


def split_speakers(meta: pd.DataFrame, spec: CorpusSpec, seed: int) -> tuple[set, set]:
    """Two halves of the speakers, each with half of every level of the group factor (if any)."""
    rng = np.random.default_rng(seed)
    half_a, half_b = set(), set()
    strata = (meta[spec.group].fillna("unknown") if spec.group else pd.Series("all", index=meta.index))
    for _, speakers in meta.groupby(strata.to_numpy())[SPEAKER]:
        shuffled = rng.permutation(np.unique(speakers.to_numpy()))
        half_a |= set(shuffled[: len(shuffled) // 2])
        half_b |= set(shuffled[len(shuffled) // 2 :])
    return half_a, half_b


def replicate(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str,
              settings: StatsSettings) -> tuple[pd.DataFrame, dict] | None:
    """Select units on half A of the speakers; test them on half B.

    Selected in half A: the units whose speaker-general q on half A (BH over
    all units) is below alpha, at most ``replication_top`` of them by
    :func:`ranking_f`.
    replicated: the half-B q (BH over the selected units) and the half-B
    permutation p both below alpha. replication_rate = replicated /
    selected (NaN when half A finds nothing).
    """
    half_a, half_b = split_speakers(meta, spec, settings.seed)
    in_a = meta[SPEAKER].isin(half_a).to_numpy()
    in_b = meta[SPEAKER].isin(half_b).to_numpy()
    codes_a, order_a = _codes(meta[in_a], spec, factor)
    codes_b, order_b = _codes(meta[in_b], spec, factor)
    if len(order_a) < 2 or len(order_b) < 2:
        return None
    eta_a = oneway(x[in_a], codes_a, len(order_a)).eta2
    eta_b = oneway(x[in_b], codes_b, len(order_b)).eta2
    on_a, _ = speaker_test(x[in_a], meta[in_a], spec, factor, 0, settings.seed)
    significant = np.flatnonzero(bh(on_a["p_speaker"]) < settings.fdr_alpha)
    size = ranking_f(x[in_a], meta[in_a], spec, factor)
    top = significant[np.argsort(-size[significant], kind="stable")][: settings.replication_top]
    p_b = np.full(x.shape[1], np.nan)
    q_b = np.full(x.shape[1], np.nan)
    if len(top):
        on_b, _ = speaker_test(x[in_b][:, top], meta[in_b], spec, factor, settings.permutations,
                               settings.seed + 7)
        p_b[top] = on_b["p_perm"]
        q_b[top] = bh(on_b["p_speaker"])
    columns = pd.DataFrame({
        "eta2_half_a": eta_a,
        "eta2_half_b": eta_b,
        "selected_half_a": np.isin(np.arange(x.shape[1]), top),
        "p_perm_half_b": p_b,
        "q_half_b": q_b,
        "replicated": (q_b < settings.fdr_alpha) & (p_b < settings.fdr_alpha),
    })
    ok = ~(np.isnan(eta_a) | np.isnan(eta_b))
    varied = ok.sum() > 2 and np.ptp(eta_a[ok]) > 0 and np.ptp(eta_b[ok]) > 0
    summary = {
        "factor": factor,
        "speakers_half_a": len(half_a),
        "speakers_half_b": len(half_b),
        "n_significant_half_a": len(significant),
        "n_selected": len(top),
        "n_replicated": int(columns["replicated"].sum()),
        "replication_rate": float(columns["replicated"].sum() / len(top)) if len(top) else np.nan,
        "spearman_eta2_halves": float(spearmanr(eta_a[ok], eta_b[ok]).statistic) if varied else np.nan,
    }
    return columns, summary


def add_mixed_models(table: pd.DataFrame, x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec,
                     factor: str, settings: StatsSettings) -> None:
    """Columns mixed_p, mixed_model, speaker_icc: a mixed model with the speaker's slope, for the
    ``mixed_top_units`` units of largest :func:`ranking_f` on half A of the speakers, fitted on
    the clips of half B (so its p is not computed on the speakers that chose the unit).

    Within-speaker factors only (a between-speaker factor has no slope); the
    other within-speaker factors are fixed covariates (see
    :func:`speechneurons.stats.mixed.fit_mixed`).
    """
    table["mixed_p"] = np.nan
    table["mixed_model"] = ""
    table["speaker_icc"] = np.nan
    top = settings.mixed_top_units
    if spec.factor(factor).varies != "within" or top <= 0:
        return
    half_a, half_b = split_speakers(meta, spec, settings.seed)
    in_a = meta[SPEAKER].isin(half_a).to_numpy()
    in_b = meta[SPEAKER].isin(half_b).to_numpy()
    covariates = within_factors(meta, spec)
    size = (ranking_f(x[in_a], meta[in_a], spec, factor) if in_a.any()
            else np.full(x.shape[1], np.nan))  # one speaker: nothing to rank on, nor to fit
    order = np.argsort(-np.nan_to_num(size, nan=-1.0), kind="stable")
    meta_b = meta[in_b].reset_index(drop=True)
    for unit in order[:top]:
        fit = fit_mixed(x[in_b, unit], meta_b, factor, covariates, SPEAKER)
        table.loc[unit, ["mixed_p", "mixed_model", "speaker_icc"]] = [
            fit["p"], fit["model"], fit["speaker_icc"]]
    for model, count in table["mixed_model"][table["mixed_model"] != SLOPE_MODEL].value_counts().items():
        if model:
            log.warning("%s: mixed model of %d of %d top units: %s", factor, count, min(top, len(table)),
                        model)


def selectivity(matrix: ActivationMatrix, clips: pd.DataFrame, spec: CorpusSpec,
                settings: StatsSettings = StatsSettings()
                ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(selectivity: one row per unit and factor of ``spec``; replication summary per factor; notes).

    A design too thin for a statistic never raises: a factor with one level
    is left out, a test without residual degrees of freedom is NaN, and
    ``notes`` says so in sentences for the log and the report. Clips whose
    level of a between-speaker factor is unknown (missing) are left out of
    that factor's tests only. With no factor of two levels both tables are
    empty (with their columns).
    """
    all_meta = clips.set_index("clip_id").loc[matrix.clip_ids].reset_index()
    tables, summaries, notes = [], [], []
    for offset, factor in enumerate(spec.factor_names):
        known = all_meta[factor].notna().to_numpy()
        meta, x = all_meta[known].reset_index(drop=True), matrix.values[known]
        if not known.all():
            notes.append(f"{factor}: {int((~known).sum())} clip(s) of unknown {factor} left out of "
                         "its tests")
        table = factor_statistics(x, meta, spec, factor, settings, seed_offset=offset)
        if table is None:
            levels = sorted(map(str, meta[factor].unique()))
            notes.append(f"{factor}: not tested, the {len(meta)} clip(s) have one level ({', '.join(levels)})"
                         if len(meta) else f"{factor}: not tested, no clip has a known {factor}")
            continue
        table.insert(1, "n_clips", len(meta))
        table.insert(2, "n_speakers", meta[SPEAKER].nunique())
        if table["df_speaker_den"].iloc[0] < 1:
            if spec.factor(factor).varies == "within":
                complete = int(table["n_speakers_tested"].iloc[0])
                why = (f"{complete} speaker(s) hold every one of its {int(table['n_levels'].iloc[0])} "
                       "levels; the test of speakers' level contrasts needs two")
            else:
                why = (f"a level of {factor} has fewer than two of the {meta[SPEAKER].nunique()} "
                       "speakers; Welch's F on speaker means needs two per level")
            notes.append(f"{factor}: no speaker-general test (F_speaker, p_perm, selective): {why}; "
                         "descriptive columns only")
        replication = replicate(x, meta, spec, factor, settings)
        if replication is not None:
            columns, summary = replication
            table = pd.concat([table, columns], axis=1)
            summaries.append(summary)
        else:
            notes.append(f"{factor}: no replication, a half of the speakers lacks two of its levels")
        add_mixed_models(table, x, meta, spec, factor, settings)
        tables.append(pd.concat([matrix.units.reset_index(drop=True), table], axis=1))
        log.info("%s: %d of %d units selective at q < %g", factor, int(table["selective"].sum()),
                 len(table), settings.fdr_alpha)
    for note in notes:
        log.warning(note)
    if not tables:
        notes.append("selectivity: no factor has two levels in the indexed clips, so nothing "
                     "can be compared; the table is empty")
        log.warning(notes[-1])
        return empty_table(SELECTIVITY_SCHEMA), empty_table(REPLICATION_SCHEMA), notes
    table = pd.concat(tables, ignore_index=True)
    replication = pd.DataFrame(summaries, columns=list(REPLICATION_SCHEMA))
    return table[[c for c in SELECTIVITY_SCHEMA if c in table.columns]], replication, notes
