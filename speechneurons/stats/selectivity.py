"""Selectivity of every unit for every factor, with speaker-aware significance.

For each unit and factor (emotion, gender, intensity; statement as a
nuisance): F and its p, Kruskal-Wallis H and its p, eta squared and omega
squared, Cohen's d for two-level factors, the preferred level and its
one-vs-rest d, a permutation p-value that respects speakers, and
Benjamini-Hochberg q-values across all units of the factor. The top units
get a mixed model with a random intercept per actor. Replication: units
chosen on one half of the actors (balanced by gender) are tested again on
the other half.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import false_discovery_control, spearmanr

from speechneurons.activations import ActivationMatrix
from speechneurons.datasets.ravdess import EMOTIONS
from speechneurons.stats.mixed import fit_mixed
from speechneurons.stats.oneway import cohens_d, kruskal, oneway
from speechneurons.stats.permutation import permutation_pvalues

log = logging.getLogger(__name__)

#: factor -> (permutation scheme, level order; the contrast of d is second - first)
FACTORS = {
    "emotion": ("within_actor", list(EMOTIONS.values())),
    "gender": ("between_actors", ["male", "female"]),
    "intensity": ("within_actor", ["normal", "strong"]),
    "statement": ("within_actor", [1, 2]),
}


@dataclass(frozen=True)
class StatsSettings:
    """The ``stats`` section of the config."""

    permutations: int = 1000
    fdr_alpha: float = 0.05
    seed: int = 0
    mixed_top_units: int = 10
    replication_top: int = 100


def _codes(meta: pd.DataFrame, factor: str) -> tuple[np.ndarray, list]:
    order = [level for level in FACTORS[factor][1] if level in set(meta[factor])]
    lookup = {level: i for i, level in enumerate(order)}
    return meta[factor].map(lookup).to_numpy(), order


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN where p is NaN)."""
    q = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = false_discovery_control(p[ok], method="bh")
    return q


def speaker_design(x: np.ndarray, codes: np.ndarray, actors: np.ndarray, scheme: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The data a speaker-aware test works on: (values, codes, permutation groups, df lost).

    within_actor: each clip minus its actor's mean (an actor-blocked design;
    ``actor count`` degrees of freedom go to the actor means). between_actors:
    one row per actor, the mean of its clips (the actor is the unit of
    replication); each row is its own permutation group.
    """
    unique, index = np.unique(actors, return_inverse=True)
    counts = np.bincount(index)
    sums = np.zeros((len(unique), x.shape[1]))
    np.add.at(sums, index, x)
    means = sums / counts[:, None]
    if scheme == "within_actor":
        return x - means[index], codes, actors, len(unique) - 1
    actor_codes = np.zeros(len(unique), dtype=codes.dtype)
    actor_codes[index] = codes
    return means, actor_codes, np.arange(len(unique)), 0


def speaker_f(x: np.ndarray, codes: np.ndarray, levels: int, actors: np.ndarray, scheme: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Speaker-aware F and its p for every column: (F, p, design values, codes, groups)."""
    values, design_codes, groups, lost = speaker_design(x, codes, actors, scheme)
    result = oneway(values, design_codes, levels)
    df_within = result.df_within - lost
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (result.ss_between / result.df_between) / (result.ss_within / df_within)
    p = stats.f.sf(f, result.df_between, df_within) if df_within > 0 else np.full(len(f), np.nan)
    if df_within <= 0:
        f = np.full(len(f), np.nan)
    return f, p, values, design_codes, groups


def factor_statistics(x: np.ndarray, meta: pd.DataFrame, factor: str,
                      settings: StatsSettings, seed_offset: int = 0) -> pd.DataFrame | None:
    """All statistics of one factor for every column of x [clips, units]; None if one level.

    Descriptive, over clips: F and p_F (naive: clips as if independent),
    Kruskal-Wallis, eta2, omega2, Cohen's d, preference. Speaker-aware:
    F_speaker / p_speaker (actor-blocked F for emotion, intensity and
    statement; F on actor means for gender), p_perm (the same statistic
    under speaker-respecting permutations) and their Benjamini-Hochberg q.
    ``selective``: q_speaker < alpha and p_perm < alpha.
    """
    codes, order = _codes(meta, factor)
    if len(order) < 2:
        log.warning("factor %s has fewer than two levels in the data: skipped", factor)
        return None
    scheme = FACTORS[factor][0]
    actors = meta["actor"].to_numpy()
    result = oneway(x, codes, len(order))
    h, p_h = kruskal(x, codes, len(order))
    d_each = np.stack([cohens_d(x, codes == level) for level in range(len(order))])
    preferred = np.argmax(np.where(np.isnan(result.level_means), -np.inf, result.level_means), axis=0)
    f_speaker, p_speaker, values, design_codes, groups = speaker_f(x, codes, len(order), actors, scheme)
    p_perm = permutation_pvalues(values, design_codes, len(order), groups,
                                 "within_actor" if scheme == "within_actor" else "between_actors",
                                 settings.permutations, settings.seed + seed_offset)
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
        "speaker_test": "actor-blocked F" if scheme == "within_actor" else "F on actor means",
        "F_speaker": f_speaker,
        "p_speaker": p_speaker,
        "p_perm": p_perm,
        "permutation_scheme": scheme,
    })
    table["q_speaker"] = bh(p_speaker)
    table["q_perm"] = bh(p_perm)
    table["selective"] = (table["q_speaker"] < settings.fdr_alpha) & (table["p_perm"] < settings.fdr_alpha)
    return table


def split_actors(meta: pd.DataFrame, seed: int) -> tuple[set, set]:
    """Two halves of the actors, each with half of the male and half of the female actors."""
    rng = np.random.default_rng(seed)
    half_a, half_b = set(), set()
    for _, actors in meta.groupby("gender")["actor"]:
        shuffled = rng.permutation(np.unique(actors.to_numpy()))
        half_a |= set(shuffled[: len(shuffled) // 2])
        half_b |= set(shuffled[len(shuffled) // 2 :])
    return half_a, half_b


def replicate(x: np.ndarray, meta: pd.DataFrame, factor: str, settings: StatsSettings
              ) -> tuple[pd.DataFrame, dict] | None:
    """Select the top units on half A of the actors (speaker-aware F); test them on half B.

    replicated: q (BH over the selected units, speaker-aware p on half B) and
    the half-B permutation p both below alpha.
    """
    half_a, half_b = split_actors(meta, settings.seed)
    in_a = meta["actor"].isin(half_a).to_numpy()
    in_b = meta["actor"].isin(half_b).to_numpy()
    codes_a, order_a = _codes(meta[in_a], factor)
    codes_b, order_b = _codes(meta[in_b], factor)
    if len(order_a) < 2 or len(order_b) < 2:
        return None
    eta_a = oneway(x[in_a], codes_a, len(order_a)).eta2
    eta_b = oneway(x[in_b], codes_b, len(order_b)).eta2
    scheme = FACTORS[factor][0]
    f_a = speaker_f(x[in_a], codes_a, len(order_a), meta["actor"].to_numpy()[in_a], scheme)[0]
    top = np.argsort(-np.nan_to_num(f_a, nan=-1))[: settings.replication_top]
    _, p_speaker_b, values, design_codes, groups = speaker_f(
        x[in_b][:, top], codes_b, len(order_b), meta["actor"].to_numpy()[in_b], scheme)
    p_b = np.full(x.shape[1], np.nan)
    p_b[top] = permutation_pvalues(values, design_codes, len(order_b), groups, scheme,
                                   settings.permutations, settings.seed + 7)
    q_b = np.full(x.shape[1], np.nan)
    q_b[top] = bh(p_speaker_b)
    columns = pd.DataFrame({
        "eta2_half_a": eta_a,
        "eta2_half_b": eta_b,
        "selected_half_a": np.isin(np.arange(x.shape[1]), top),
        "p_perm_half_b": p_b,
        "replicated": (q_b < settings.fdr_alpha) & (p_b < settings.fdr_alpha),
    })
    ok = ~(np.isnan(eta_a) | np.isnan(eta_b))
    varied = ok.sum() > 2 and np.ptp(eta_a[ok]) > 0 and np.ptp(eta_b[ok]) > 0
    summary = {
        "factor": factor,
        "actors_half_a": len(half_a),
        "actors_half_b": len(half_b),
        "n_selected": len(top),
        "n_replicated": int(columns["replicated"].sum()),
        "replication_rate": float(columns["replicated"].sum() / max(len(top), 1)),
        "spearman_eta2_halves": float(spearmanr(eta_a[ok], eta_b[ok]).statistic) if varied else np.nan,
    }
    return columns, summary


def selectivity(matrix: ActivationMatrix, clips: pd.DataFrame,
                settings: StatsSettings = StatsSettings()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(selectivity table: one row per unit and factor; replication summary per factor)."""
    meta = clips.set_index("clip_id").loc[matrix.clip_ids].reset_index()
    x = matrix.values
    tables, summaries = [], []
    for offset, factor in enumerate(FACTORS):
        table = factor_statistics(x, meta, factor, settings, seed_offset=offset)
        if table is None:
            continue
        table.insert(1, "n_clips", len(meta))
        table.insert(2, "n_actors", meta["actor"].nunique())
        replication = replicate(x, meta, factor, settings)
        if replication is not None:
            columns, summary = replication
            table = pd.concat([table, columns], axis=1)
            summaries.append(summary)
        # mixed models for the factor's top units
        table["mixed_p"] = np.nan
        table["actor_icc"] = np.nan
        if factor in ("emotion", "intensity", "statement") and settings.mixed_top_units > 0:
            order = np.argsort(-table["F_speaker"].fillna(-1).to_numpy(), kind="stable")
            for unit in order[: settings.mixed_top_units]:
                fit = fit_mixed(x[:, unit], meta)
                table.loc[unit, "mixed_p"] = fit[f"p_{factor}"]
                table.loc[unit, "actor_icc"] = fit["actor_icc"]
        tables.append(pd.concat([matrix.units.reset_index(drop=True), table], axis=1))
        log.info("%s: %d of %d units selective at q < %g", factor, int(table["selective"].sum()),
                 len(table), settings.fdr_alpha)
    if not tables:
        raise ValueError("no factor has two levels in the indexed clips: nothing to compare")
    return pd.concat(tables, ignore_index=True), pd.DataFrame(summaries)
