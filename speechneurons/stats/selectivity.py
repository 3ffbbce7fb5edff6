"""Selectivity of every unit for every factor, with speaker-general significance.

For each unit and factor of the corpus's spec: descriptive statistics over
clips (F, Kruskal-Wallis, eta squared, omega squared, Cohen's d, the preferred level and its one-vs-rest d), and a
speaker-general test (:mod:`speechneurons.stats.repeated`): the
repeated-measures F on each speaker's level contrasts for factors that vary
within speakers, with its exact sign-flip p resolved in the tail, and Welch's
F on speaker means for factors that vary between them, with its permuted-
speaker p; Benjamini-Hochberg q-values across all units of the factor. The speaker-blocked F of clips
stays as a descriptive column (``F_within_speakers``): it asks whether
*these* speakers' clips differ. Units ranked on one half of the speakers
(balanced by the group factor) get a mixed model with a random slope on the
other half. Replication of chosen units on held-out speakers is the
cross-fitted selection's (:func:`speechneurons.stats.selection.replication`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from speechneurons.cache import RESERVED_GIB, UnitBlocks
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.mixed import SLOPE_MODEL, fit_mixed
from speechneurons.stats.oneway import cohens_d, kruskal, oneway
from speechneurons.stats.repeated import (FLIPS_DECIDE, PAIRED_T, REPEATED_F, TOO_FEW_FOR_FLIPS, WELCH, Rows, blocked_f, clip_rows, median_df,
                                          speaker_general_test, speaker_means, tail_flips_for,
                                          within_speaker_cells)
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
    "df_speaker_den": "int32", "gg_epsilon": "float64", "n_speakers_tested": "int32",
    "speakers_left_out": "int32", "thin_cells": "int32", "p_speaker": "float64", "p_perm": "float64",
    "permutation_scheme": "str", "F_within_speakers": "float64", "p_within_speakers": "float64",
    "q_speaker": "float64", "q_perm": "float64", "selective": "bool", "mixed_p": "float64", "mixed_model": "str",
    "speaker_icc": "float64",
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

@dataclass(frozen=True)
class StatsSettings(FromConfig):
    """The ``stats`` section of the config."""

    SECTION: ClassVar[str] = "stats"

    permutations: int = 1000
    fdr_alpha: float = 0.05
    seed: int = 0
    mixed_top_units: int = 10
    min_clips_per_cell: int = 2


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
    return rows, PAIRED_T if len(order) == 2 else REPEATED_F


def ranking_f(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str) -> np.ndarray:
    """[units] the least-squares F of ``factor`` on the speaker rows (cells after speakers, or
    speaker means): a size to rank units by, defined with as few as two speakers; not a test."""
    rows, _ = speaker_rows(meta, spec, factor)
    return blocked_f(rows.values(x), rows).f


def speaker_test(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str,
                 permutations: int, seed: int, tail_flips: int = 0, min_clips: int = 1) -> tuple[dict, str]:
    """The speaker-general test of ``factor`` for every column of x [clips, units]
    (:func:`speechneurons.stats.repeated.speaker_general_test`; ``tail_flips`` and ``min_clips``
    for a within-speaker factor): columns and the test's name."""
    rows, _ = speaker_rows(meta, spec, factor)
    result = speaker_general_test(rows.values(x), rows, spec.factor(factor).varies == "within",
                                  permutations, seed, tail_flips, min_clips)
    return {
        "F_speaker": result.f,
        "df_speaker_num": np.int32(result.df_num),
        "df_speaker_den": np.int32(result.df_den),
        "gg_epsilon": np.nan if result.epsilon is None else result.epsilon,
        "n_speakers_tested": np.int32(result.n_speakers),
        "speakers_left_out": np.int32(result.left_out),
        "thin_cells": np.int32(result.thin_cells),
        "p_speaker": result.p,
        "p_perm": result.p_perm,
        "df_den_each": result.df_den_each,
    }, result.name


def factor_columns(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str,
                   settings: StatsSettings, seed_offset: int = 0, tail_flips: int = 0) -> pd.DataFrame:
    """The per-unit statistics of one factor for every column of x [clips, units]; the factor has
    two levels or more in ``meta``; ``tail_flips``: :func:`~speechneurons.stats.repeated.flip_pvalues`.

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
                                      settings.seed + seed_offset, tail_flips, settings.min_clips_per_cell)
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
        "permutation_scheme": "signs of each speaker's level contrasts flipped, the tail resolved" if within
                              else "speakers' labels permuted (Welch statistic)",
        "F_within_speakers": f_within,
        "p_within_speakers": p_within,
        DF_EACH: np.nan if df_den_each is None else df_den_each,
    })


#: a column of :func:`factor_columns` until every block is in: each unit's Welch denominator df
DF_EACH = "df_den_each"


def discoveries(p_speaker: np.ndarray, p_perm: np.ndarray, test: str, alpha: float) -> pd.DataFrame:
    """q_speaker and q_perm (Benjamini-Hochberg over the given units) and ``selective``: for a
    within-speaker factor q_perm < alpha (the exact sign-flip test decides; its parametric p is
    conservative); where the speakers are too few for the flips to reach BH's threshold, and for a
    between-speaker factor, q_speaker < alpha and p_perm < alpha (the parametric test, checked by
    its permutation p, whose floor cannot carry BH over many units)."""
    q_speaker, q_perm = bh(p_speaker), bh(p_perm)
    selective = (q_perm < alpha) if test in FLIPS_DECIDE else (q_speaker < alpha) & (p_perm < alpha)
    return pd.DataFrame({"q_speaker": q_speaker, "q_perm": q_perm, "selective": selective})


def add_discoveries(table: pd.DataFrame, settings: StatsSettings) -> None:
    """Columns q_speaker, q_perm and ``selective`` (:func:`discoveries` over every unit of the
    factor), in place; a Welch test's df_speaker_den becomes the median over every unit's
    (:func:`median_df`)."""
    each = table.pop(DF_EACH).to_numpy()
    if table["speaker_test"].iloc[0] == WELCH:
        table["df_speaker_den"] = np.int32(median_df(each))
    found = discoveries(table["p_speaker"].to_numpy(), table["p_perm"].to_numpy(), table["speaker_test"].iloc[0],
                        settings.fdr_alpha)
    for column in found:
        table[column] = found[column].to_numpy()


def dropped_note(factor: str, table: pd.DataFrame, min_clips: int) -> str | None:
    """A sentence on the speakers and cells a within-speaker factor's test left out (None: none)."""
    left_out, thin = int(table["speakers_left_out"].iloc[0]), int(table["thin_cells"].iloc[0])
    if not left_out:
        return None
    tested = int(table["n_speakers_tested"].iloc[0])
    why = "lack a level of it"
    if thin:
        why += f" or hold a cell of fewer than stats.min_clips_per_cell = {min_clips} clips ({thin} such cell(s))"
    return (f"{factor}: {left_out} of {left_out + tested} speaker(s) left out of its speaker-general test: "
            f"they {why}")


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


def half_a_columns(x: np.ndarray, design: FactorDesign, spec: CorpusSpec) -> pd.DataFrame:
    """Per unit of x [clips of the factor, units], what the mixed models choose their units by:
    the half-A :func:`ranking_f` (``size_a``); NaN where the design leaves none."""
    meta, in_a, factor = design.meta, design.in_a, design.factor
    size = np.full(x.shape[1], np.nan)
    if in_a.any() and (design.replicable or spec.factor(factor).varies == "within"):
        size = ranking_f(x[in_a], meta[in_a], spec, factor)
    return pd.DataFrame({"size_a": size})


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
                settings: StatsSettings = StatsSettings()) -> tuple[pd.DataFrame, list[str]]:
    """(selectivity: one row per unit and factor of ``spec``; notes).

    ``source``: the activations, read one block of units at a time (an
    :class:`~speechneurons.cache.ActivationMatrix` is one block), so memory
    follows the block, not clips x units; after the blocks, the q-values
    (over all units) and the few units that the mixed models test are gathered. The tables equal those of the whole matrix bit for bit.

    A design too thin for a statistic never raises: a factor with one level
    is left out, a test without residual degrees of freedom is NaN, and
    ``notes`` says so in sentences for the log and the report. Clips whose
    level of a between-speaker factor is unknown (missing) are left out of
    that factor's tests only. With no factor of two levels the table is
    empty (with its columns).
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
    tail_flips = tail_flips_for(len(source.units), settings.fdr_alpha)
    for i in tqdm(range(len(source.bounds)), desc="selectivity", unit="block",
                  disable=len(source.bounds) == 1 or not designs):
        block = source.block(i)
        for design in designs:
            x = block[design.known]
            columns = factor_columns(x, design.meta, spec, design.factor, settings, design.offset, tail_flips)
            parts[design.factor].append((columns, half_a_columns(x, design, spec)))
        del block
    # the units the mixed models test, gathered in one read
    tables = {d.factor: pd.concat([c for c, _ in parts[d.factor]], ignore_index=True) for d in designs}
    halves = {d.factor: pd.concat([h for _, h in parts[d.factor]], ignore_index=True) for d in designs}
    tops = {d.factor: mixed_units(halves[d.factor], d, spec, settings) for d in designs}
    wanted = np.unique(np.concatenate([np.zeros(0, dtype=np.int64), *tops.values()]))
    gathered = source.columns(wanted) if len(wanted) else np.zeros((len(source.clip_ids), 0), np.float32)
    out = []
    for design in designs:
        factor, meta, notes = design.factor, design.meta, said[design.factor]
        table = tables[factor]
        add_discoveries(table, settings)
        dropped = dropped_note(factor, table, settings.min_clips_per_cell)
        if dropped:
            notes.append(dropped)
        if TOO_FEW_FOR_FLIPS in table["speaker_test"].iloc[0]:
            n = int(table["n_speakers_tested"].iloc[0])
            notes.append(f"{factor}: {n} speakers give at most 2^{n - 1} sign flips, too few for a p below "
                         f"BH's first threshold over {len(table)} units ({settings.fdr_alpha} / {len(table)}); "
                         "selective rests on the Greenhouse-Geisser p of the same F (conservative) and p_perm")
        table.insert(1, "n_clips", len(meta))
        table.insert(2, "n_speakers", meta[SPEAKER].nunique())
        if table["df_speaker_den"].iloc[0] < 1:
            if spec.factor(factor).varies == "within":
                complete = int(table["n_speakers_tested"].iloc[0])
                why = (f"{complete} speaker(s) hold every one of its {int(table['n_levels'].iloc[0])} "
                       f"levels with at least stats.min_clips_per_cell = {settings.min_clips_per_cell} "
                       "clip(s) each; the test of speakers' level contrasts needs two")
            else:
                why = (f"a level of {factor} has fewer than two of the {meta[SPEAKER].nunique()} "
                       "speakers; Welch's F on speaker means needs two per level")
            notes.append(f"{factor}: no speaker-general test (F_speaker, p_perm, selective): {why}; "
                         "descriptive columns only")
        mixed = tops[factor]
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
        return empty_table(SELECTIVITY_SCHEMA), notes
    table = pd.concat(out, ignore_index=True)
    return table[[c for c in SELECTIVITY_SCHEMA if c in table.columns]], notes
