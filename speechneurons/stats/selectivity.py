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
from tqdm.auto import tqdm

from speechneurons.cache import RESERVED_GIB, UnitBlocks
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.mixed import SLOPE_MODEL, fit_mixed
from speechneurons.stats.oneway import cohens_d, kruskal, oneway
from speechneurons.stats.repeated import (HOTELLING, PAIRED_T, WELCH, Rows, blocked_f, clip_rows, median_df,
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
#: bytes a selectivity job holds per (clip, unit) of the block it works on (the block, its float64
#: copies, ranks and cells; bench/selectivity_speed.py): blocks are sized to compute.memory_gib by it
BYTES_PER_VALUE = 60
#: bytes the result holds per unit and factor (some 45 columns, built per block and joined)
BYTES_PER_UNIT_AND_FACTOR = 1200


def reserved_gib(n_units: int, n_factors: int) -> float:
    """GiB a selectivity job holds beside its blocks: the interpreter and libraries
    (:data:`speechneurons.cache.RESERVED_GIB`) and the result tables."""
    return RESERVED_GIB + n_units * n_factors * BYTES_PER_UNIT_AND_FACTOR / 2**30

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
        "df_den_each": result.df_den_each,
    }, result.name


def factor_columns(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str,
                   settings: StatsSettings, seed_offset: int = 0) -> tuple[pd.DataFrame, int]:
    """(the per-unit statistics of one factor for every column of x [clips, units], speakers left
    out of its speaker-general test); the factor has two levels or more in ``meta``.

    Descriptive, over clips: F and p_F (naive: clips as if independent),
    Kruskal-Wallis, eta2, omega2, Cohen's d, preference, and for
    within-speaker factors the speaker-blocked F of clips (F_within_speakers).
    Speaker-general: F_speaker / p_speaker and p_perm. Every column of a unit
    depends on that unit's column of x only (the permutations are drawn from
    the seed alone), so blocks of units give the columns of the whole matrix.
    """
    codes, order = _codes(meta, spec, factor)
    result = oneway(x, codes, len(order))
    h, p_h = kruskal(x, codes, len(order))
    d_each = np.stack([cohens_d(x, codes == level) for level in range(len(order))])
    preferred = np.argmax(np.where(np.isnan(result.level_means), -np.inf, result.level_means), axis=0)
    general, test_name = speaker_test(x, meta, spec, factor, settings.permutations,
                                      settings.seed + seed_offset)
    left_out = general.pop("speakers_left_out")
    df_den_each = general.pop("df_den_each")
    within = spec.factor(factor).varies == "within"
    if within:
        blocked = blocked_f(x, clip_rows(codes, len(order), meta[SPEAKER].to_numpy()))
        f_within, p_within = blocked.f, blocked.p
    else:
        f_within = p_within = np.full(x.shape[1], np.nan)
    return pd.DataFrame({
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
        DF_EACH: np.nan if df_den_each is None else df_den_each,
    }), left_out


#: a column of :func:`factor_columns` until every block is in: each unit's Welch denominator df
DF_EACH = "df_den_each"


def add_discoveries(table: pd.DataFrame, factor: str, left_out: int, settings: StatsSettings) -> None:
    """Columns q_speaker and q_perm (Benjamini-Hochberg over every unit of the factor) and
    ``selective`` (q_speaker < alpha and p_perm < alpha), in place; a Welch test's
    df_speaker_den becomes the median over every unit's (:func:`median_df`)."""
    each = table.pop(DF_EACH).to_numpy()
    if table["speaker_test"].iloc[0] == WELCH:
        table["df_speaker_den"] = np.int32(median_df(each))
    if left_out:
        log.warning("%s: %d speaker(s) lack a level and are left out of its speaker-general test",
                    factor, left_out)
    smallest_q = len(table) / (settings.permutations + 1)
    if smallest_q >= settings.fdr_alpha:
        log.warning("%s: with %d permutations and %d units, q_perm cannot fall below %.3g; "
                    "q_speaker carries the FDR (raise stats.permutations to use q_perm)",
                    factor, settings.permutations, len(table), smallest_q)
    table["q_speaker"] = bh(table["p_speaker"].to_numpy())
    table["q_perm"] = bh(table["p_perm"].to_numpy())
    table["selective"] = (table["q_speaker"] < settings.fdr_alpha) & (table["p_perm"] < settings.fdr_alpha)


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


@dataclass
class FactorDesign:
    """One factor's clips and speaker halves: the factor's tests use the clips where it is known
    (``known`` [clips]); ``in_a`` / ``in_b`` [rows of meta] are :func:`split_speakers`'s halves."""

    factor: str
    offset: int  # the factor's place in the spec: its permutation seed is settings.seed + offset
    known: np.ndarray
    meta: pd.DataFrame
    in_a: np.ndarray
    in_b: np.ndarray
    replicable: bool  # each half holds two levels or more

    @classmethod
    def of(cls, all_meta: pd.DataFrame, spec: CorpusSpec, factor: str, offset: int,
           settings: StatsSettings) -> "FactorDesign":
        known = all_meta[factor].notna().to_numpy()
        meta = all_meta[known].reset_index(drop=True)
        half_a, half_b = split_speakers(meta, spec, settings.seed)
        in_a = meta[SPEAKER].isin(half_a).to_numpy()
        in_b = meta[SPEAKER].isin(half_b).to_numpy()
        replicable = len(_codes(meta[in_a], spec, factor)[1]) >= 2 and len(_codes(meta[in_b], spec, factor)[1]) >= 2
        return cls(factor, offset, known, meta, in_a, in_b, replicable)


def half_a_columns(x: np.ndarray, design: FactorDesign, spec: CorpusSpec, settings: StatsSettings
                   ) -> pd.DataFrame:
    """Per unit of x [clips of the factor, units], what replication and the mixed models choose
    their units by: eta2 on each half, the half-A speaker-general p (no permutations) and the
    half-A :func:`ranking_f` (``size_a``); NaN where the design leaves none."""
    meta, in_a, in_b, factor = design.meta, design.in_a, design.in_b, design.factor
    nan = np.full(x.shape[1], np.nan)
    out = {"eta2_half_a": nan, "eta2_half_b": nan, "p_speaker_half_a": nan, "size_a": nan}
    if design.replicable:
        codes_a, order_a = _codes(meta[in_a], spec, factor)
        codes_b, order_b = _codes(meta[in_b], spec, factor)
        out["eta2_half_a"] = oneway(x[in_a], codes_a, len(order_a)).eta2
        out["eta2_half_b"] = oneway(x[in_b], codes_b, len(order_b)).eta2
        out["p_speaker_half_a"] = speaker_test(x[in_a], meta[in_a], spec, factor, 0, settings.seed)[0]["p_speaker"]
    if in_a.any() and (design.replicable or spec.factor(factor).varies == "within"):
        out["size_a"] = ranking_f(x[in_a], meta[in_a], spec, factor)
    return pd.DataFrame(out)


def replication_units(half_a: pd.DataFrame, design: FactorDesign, settings: StatsSettings) -> np.ndarray:
    """The units selected on half A: half-A q (BH over all units) below alpha, at most
    ``replication_top`` of them by ``size_a``; empty when the factor is not replicable."""
    if not design.replicable:
        return np.zeros(0, dtype=np.int64)
    significant = np.flatnonzero(bh(half_a["p_speaker_half_a"].to_numpy()) < settings.fdr_alpha)
    size = half_a["size_a"].to_numpy()
    return significant[np.argsort(-size[significant], kind="stable")][: settings.replication_top]


def replicate(half_a: pd.DataFrame, top: np.ndarray, x_top: np.ndarray, design: FactorDesign,
              spec: CorpusSpec, settings: StatsSettings) -> tuple[pd.DataFrame, dict]:
    """Select units on half A of the speakers; test them on half B.

    Selected in half A (``top``, :func:`replication_units`; x_top [clips of
    the factor, len(top)] their columns). replicated: the half-B q (BH over
    the selected units) and the half-B permutation p both below alpha.
    replication_rate = replicated / selected (NaN when half A finds nothing).
    """
    meta, in_b, factor = design.meta, design.in_b, design.factor
    eta_a, eta_b = half_a["eta2_half_a"].to_numpy(), half_a["eta2_half_b"].to_numpy()
    n_units = len(half_a)
    p_b = np.full(n_units, np.nan)
    q_b = np.full(n_units, np.nan)
    if len(top):
        on_b, _ = speaker_test(x_top[in_b], meta[in_b], spec, factor, settings.permutations,
                               settings.seed + 7)
        p_b[top] = on_b["p_perm"]
        q_b[top] = bh(on_b["p_speaker"])
    columns = pd.DataFrame({
        "eta2_half_a": eta_a,
        "eta2_half_b": eta_b,
        "selected_half_a": np.isin(np.arange(n_units), top),
        "p_perm_half_b": p_b,
        "q_half_b": q_b,
        "replicated": (q_b < settings.fdr_alpha) & (p_b < settings.fdr_alpha),
    })
    ok = ~(np.isnan(eta_a) | np.isnan(eta_b))
    varied = ok.sum() > 2 and np.ptp(eta_a[ok]) > 0 and np.ptp(eta_b[ok]) > 0
    significant = int((bh(half_a["p_speaker_half_a"].to_numpy()) < settings.fdr_alpha).sum())
    summary = {
        "factor": factor,
        "speakers_half_a": int(meta[SPEAKER][design.in_a].nunique()),
        "speakers_half_b": int(meta[SPEAKER][in_b].nunique()),
        "n_significant_half_a": significant,
        "n_selected": len(top),
        "n_replicated": int(columns["replicated"].sum()),
        "replication_rate": float(columns["replicated"].sum() / len(top)) if len(top) else np.nan,
        "spearman_eta2_halves": float(spearmanr(eta_a[ok], eta_b[ok]).statistic) if varied else np.nan,
    }
    return columns, summary


def mixed_units(half_a: pd.DataFrame, design: FactorDesign, spec: CorpusSpec, settings: StatsSettings
                ) -> np.ndarray:
    """The ``mixed_top_units`` units of largest half-A ``size_a`` (within-speaker factors only)."""
    if spec.factor(design.factor).varies != "within" or settings.mixed_top_units <= 0:
        return np.zeros(0, dtype=np.int64)
    size = half_a["size_a"].to_numpy()
    return np.argsort(-np.nan_to_num(size, nan=-1.0), kind="stable")[: settings.mixed_top_units]


def add_mixed_models(table: pd.DataFrame, top: np.ndarray, x_top: np.ndarray, design: FactorDesign,
                     spec: CorpusSpec) -> None:
    """Columns mixed_p, mixed_model, speaker_icc: a mixed model with the speaker's slope, for the
    units ``top`` (:func:`mixed_units`: largest :func:`ranking_f` on half A of the speakers;
    x_top [clips of the factor, len(top)] their columns), fitted on the clips of half B (so its p
    is not computed on the speakers that chose the unit).

    Within-speaker factors only (a between-speaker factor has no slope); the
    other within-speaker factors are fixed covariates (see
    :func:`speechneurons.stats.mixed.fit_mixed`).
    """
    table["mixed_p"] = np.nan
    table["mixed_model"] = ""
    table["speaker_icc"] = np.nan
    meta, in_b, factor = design.meta, design.in_b, design.factor
    covariates = within_factors(meta, spec)
    meta_b = meta[in_b].reset_index(drop=True)
    for i, unit in enumerate(top):
        fit = fit_mixed(x_top[in_b, i], meta_b, factor, covariates, SPEAKER)
        table.loc[unit, ["mixed_p", "mixed_model", "speaker_icc"]] = [
            fit["p"], fit["model"], fit["speaker_icc"]]
    for model, count in table["mixed_model"][table["mixed_model"] != SLOPE_MODEL].value_counts().items():
        if model:
            log.warning("%s: mixed model of %d of %d top units: %s", factor, count, len(top), model)


def selectivity(source: UnitBlocks, clips: pd.DataFrame, spec: CorpusSpec,
                settings: StatsSettings = StatsSettings()
                ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(selectivity: one row per unit and factor of ``spec``; replication summary per factor; notes).

    ``source``: the activations, read one block of units at a time (an
    :class:`~speechneurons.cache.ActivationMatrix` is one block), so memory
    follows the block, not clips x units; after the blocks, the q-values
    (over all units) and the few units that replication and the mixed models
    test are gathered. The tables equal those of the whole matrix bit for bit.

    A design too thin for a statistic never raises: a factor with one level
    is left out, a test without residual degrees of freedom is NaN, and
    ``notes`` says so in sentences for the log and the report. Clips whose
    level of a between-speaker factor is unknown (missing) are left out of
    that factor's tests only. With no factor of two levels both tables are
    empty (with their columns).
    """
    all_meta = clips.set_index("clip_id").loc[source.clip_ids].reset_index()
    designs, said = [], {factor: [] for factor in spec.factor_names}  # notes, per factor in the spec's order
    for offset, factor in enumerate(spec.factor_names):
        design = FactorDesign.of(all_meta, spec, factor, offset, settings)
        meta, notes = design.meta, said[factor]
        if not design.known.all():
            notes.append(f"{factor}: {int((~design.known).sum())} clip(s) of unknown {factor} left out of "
                         "its tests")
        if len(_codes(meta, spec, factor)[1]) < 2:
            levels = sorted(map(str, meta[factor].unique()))
            notes.append(f"{factor}: not tested, the {len(meta)} clip(s) have one level ({', '.join(levels)})"
                         if len(meta) else f"{factor}: not tested, no clip has a known {factor}")
            continue
        designs.append(design)
    parts: dict[str, list] = {d.factor: [] for d in designs}
    left_out: dict[str, int] = {}
    for i in tqdm(range(len(source.bounds)), desc="selectivity", unit="block",
                  disable=len(source.bounds) == 1 or not designs):
        block = source.block(i)
        for design in designs:
            x = block[design.known]
            columns, left_out[design.factor] = factor_columns(x, design.meta, spec, design.factor, settings,
                                                              design.offset)
            parts[design.factor].append((columns, half_a_columns(x, design, spec, settings)))
        del block
    # the units replication and the mixed models test, gathered in one read
    tables = {d.factor: pd.concat([c for c, _ in parts[d.factor]], ignore_index=True) for d in designs}
    halves = {d.factor: pd.concat([h for _, h in parts[d.factor]], ignore_index=True) for d in designs}
    tops = {d.factor: (replication_units(halves[d.factor], d, settings),
                       mixed_units(halves[d.factor], d, spec, settings)) for d in designs}
    wanted = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *[t for pair in tops.values() for t in pair]]))
    gathered = source.columns(wanted) if len(wanted) else np.zeros((len(source.clip_ids), 0), np.float32)
    out, summaries = [], []
    for design in designs:
        factor, meta, notes = design.factor, design.meta, said[design.factor]
        table = tables[factor]
        add_discoveries(table, factor, left_out[factor], settings)
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
        replicated, mixed = tops[factor]
        if design.replicable:
            x_top = gathered[design.known][:, np.searchsorted(wanted, replicated)]
            columns, summary = replicate(halves[factor], replicated, x_top, design, spec, settings)
            table = pd.concat([table, columns], axis=1)
            summaries.append(summary)
        else:
            notes.append(f"{factor}: no replication, a half of the speakers lacks two of its levels")
        add_mixed_models(table, mixed, gathered[design.known][:, np.searchsorted(wanted, mixed)], design, spec)
        out.append(pd.concat([source.units.reset_index(drop=True), table], axis=1))
        log.info("%s: %d of %d units selective at q < %g", factor, int(table["selective"].sum()),
                 len(table), settings.fdr_alpha)
    notes = [note for factor in spec.factor_names for note in said[factor]]
    for note in notes:
        log.warning(note)
    if not out:
        notes.append("selectivity: no factor has two levels in the indexed clips, so nothing "
                     "can be compared; the table is empty")
        log.warning(notes[-1])
        return empty_table(SELECTIVITY_SCHEMA), empty_table(REPLICATION_SCHEMA), notes
    table = pd.concat(out, ignore_index=True)
    replication = pd.DataFrame(summaries, columns=list(REPLICATION_SCHEMA))
    return table[[c for c in SELECTIVITY_SCHEMA if c in table.columns]], replication, notes
