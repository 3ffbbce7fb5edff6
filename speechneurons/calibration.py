"""Calibration of the tests the workflow prints: realistic nulls, a planted effect, rates with their SE.

Every p, q, interval and ``selective`` of the study's tables is checked here
on RAVDESS-shaped synthetic data (24 actors x 60 clips, :func:`null_data`)
where the truth is known. The nulls hold what makes speaker data hard:

- ``intercepts``: speaker intercepts (SD 1) and clip noise (SD 1);
- ``slopes_0.3`` / ``slopes_0.6``: also speaker x level slopes of emotion,
  intensity and statement (SD 0.3 or 0.6): speakers' own ways of
  expressing each level, which a test of the population must count as noise;
- ``unbalanced``: slopes 0.3, 30 % of the clips dropped at random, two
  emotions missing for every fifth actor and strong intensity for one;
- ``heteroscedastic``: slopes 0.3, clip noise whose SD depends on the
  emotion (0.6 to 1.6) and on the speaker (log-normal, SD 0.4);
- ``heavy_tails``: slopes 0.3, clip noise t with 3 df (scaled to SD 1).

Each check returns plain numbers (rates at 0.05 and 0.001 with their
binomial SE, shares of complete-null runs with any BH discovery, power);
``bench/calibration.py`` runs them at full size and writes
``bench/results/calibration.json``, and ``tests/test_calibration.py`` runs
small versions of the same checks.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC, full_design

NULLS = ("intercepts", "slopes_0.3", "slopes_0.6", "unbalanced", "heteroscedastic", "heavy_tails")
#: SD of the clip noise per emotion in the heteroscedastic null (neutral first, RAVDESS order)
LEVEL_NOISE = [1.6, 0.6, 1.0, 1.3, 1.5, 0.8, 1.2, 0.7]


def null_data(kind: str, units: int, seed: int, actors: int = 24,
              planted: dict | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """(clips, x [clips, units]) of one null (module docstring), with no mean effect of any factor.

    ``planted``: {"units": n, "level": emotion, "size": s} adds s (in clip-noise SDs) to the
    first n units on that emotion's clips, in every speaker; {"units": n, "pattern": {emotion:
    s, ...}} adds each emotion's s.
    """
    meta = full_design(actors=range(1, actors + 1))
    rng = np.random.default_rng(seed)
    if kind == "unbalanced":
        keep = rng.random(len(meta)) > 0.3
        keep &= ~((meta["actor"] % 5 == 0) & meta["emotion"].isin(["sad", "angry"])).to_numpy()
        keep &= ~((meta["actor"] == 7) & (meta["intensity"] == "strong")).to_numpy()
        meta = meta[keep].reset_index(drop=True)
    actor = meta["actor"].to_numpy()
    x = rng.normal(0, 1.0, size=(actors + 1, units))[actor]
    noise_sd = np.ones(len(meta))
    if kind == "heteroscedastic":
        order = list(dict.fromkeys(full_design(actors=[1])["emotion"]))
        noise_sd = (np.array(LEVEL_NOISE)[meta["emotion"].map(order.index).to_numpy()]
                    * np.exp(rng.normal(0, 0.4, size=actors + 1))[actor])
    if kind == "heavy_tails":
        x += rng.standard_t(3, size=(len(meta), units)) / np.sqrt(3.0)
    else:
        x += rng.normal(size=(len(meta), units)) * noise_sd[:, None]
    slope = {"intercepts": 0.0, "slopes_0.6": 0.6}.get(kind, 0.3)
    if slope:
        for factor in ("emotion", "intensity", "statement"):
            cell = pd.factorize(meta["actor"].astype(str) + "/" + meta[factor].astype(str))[0]
            x += rng.normal(0, slope, size=(cell.max() + 1, units))[cell]
    if planted:
        pattern = planted.get("pattern") or {planted["level"]: planted["size"]}
        shift = meta["emotion"].map(pattern).fillna(0.0).to_numpy(dtype=float)
        x[:, : planted["units"]] += shift[:, None]
    return meta, x


def matrix_of(meta: pd.DataFrame, x: np.ndarray, layers: int = 1) -> ActivationMatrix:
    """An activation matrix of x's columns as ``layers`` hidden layers of equal width."""
    width = x.shape[1] // layers
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat(np.arange(1, layers + 1), width).astype(np.int32),
                          "neuron": np.tile(np.arange(width), layers).astype(np.int32)})
    return ActivationMatrix(meta["clip_id"].tolist(), units, x[:, : width * layers])


def rate(p: np.ndarray, alpha: float) -> dict:
    """Share of p at or below alpha among the finite ones (a permutation p of 1 / 1000 counts at
    0.001), its binomial SE at the nominal level, and n."""
    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    n = len(p)
    return {"rate": float((p <= alpha).mean()) if n else float("nan"),
            "se": float(np.sqrt(alpha * (1 - alpha) / n)) if n else float("nan"), "n": n}


def rates(p: np.ndarray) -> dict:
    """:func:`rate` at 0.05, 0.01 and 0.001."""
    return {"0.05": rate(p, 0.05), "0.01": rate(p, 0.01), "0.001": rate(p, 0.001)}


def share(flags: list[bool]) -> dict:
    """Share of runs with a flag, its SE (at the observed share, floored at 5 %), and n."""
    flags = np.asarray(flags, dtype=float)
    n = len(flags)
    value = float(flags.mean()) if n else float("nan")
    return {"share": value, "se": float(np.sqrt(max(value, 0.05) * (1 - max(value, 0.05)) / n)) if n else
            float("nan"), "runs": n}


# selectivity -------------------------------------------------------------------

def selectivity_null(kind: str, units: int, runs: int, permutations: int, seed: int = 0,
                     reference: Callable | None = None) -> dict:
    """Per factor: rates of p_speaker and p_perm, and complete-null runs with any BH discovery
    (q_speaker < 0.05) and any ``selective`` unit. ``reference(meta, x, factor)`` -> p of the test
    this one replaced, on the same data."""
    from speechneurons.stats.selectivity import StatsSettings, selectivity

    settings = StatsSettings(permutations=permutations, mixed_top_units=0)
    p, discoveries, old = {}, {}, {}
    for run in range(runs):
        meta, x = null_data(kind, units, seed + 1000 * run)
        table = selectivity(matrix_of(meta, x), meta, SPEC, settings)[0]
        for factor, rows in table.groupby("factor", sort=False):
            p.setdefault(factor, {"p_speaker": [], "p_perm": []})
            p[factor]["p_speaker"].append(rows["p_speaker"].to_numpy())
            p[factor]["p_perm"].append(rows["p_perm"].to_numpy())
            discoveries.setdefault(factor, {"any_q_below_05": [], "any_selective": []})
            discoveries[factor]["any_q_below_05"].append(bool((rows["q_speaker"] < 0.05).any()))
            discoveries[factor]["any_selective"].append(bool(rows["selective"].any()))
            if reference is not None and factor == "emotion":
                old.setdefault(factor, []).append(reference(meta, x, factor))
    out = {}
    for factor in p:
        out[factor] = {column: rates(np.concatenate(values)) for column, values in p[factor].items()}
        out[factor].update({k: share(v) for k, v in discoveries[factor].items()})
        if factor in old:
            old_p = np.concatenate(old[factor])
            out[factor]["replaced_test_p"] = rates(old_p)
    return out


#: the arousal pattern of the power table: high-arousal emotions up, low-arousal down (clip-noise SD)
AROUSAL = {"angry": 0.3, "happy": 0.3, "fearful": 0.3, "sad": -0.3, "calm": -0.3}


def planted_power(planted: dict, units: int, runs: int, permutations: int, seed: int = 0,
                  reference: Callable | None = None) -> dict:
    """Share of the planted units (``planted`` as in :func:`null_data`, slopes 0.3) that the
    emotion test calls ``selective``, and the false-discovery share among the units called; with
    ``reference(meta, x) -> selective`` the same for the test this one replaced."""
    from speechneurons.stats.selectivity import StatsSettings, selectivity

    settings = StatsSettings(permutations=permutations, mixed_top_units=0)
    n = planted["units"]
    found, false, old_found, old_false = [], [], [], []
    for run in range(runs):
        meta, x = null_data("slopes_0.3", units, seed + 1000 * run, planted=planted)
        table = selectivity(matrix_of(meta, x), meta, SPEC, settings)[0]
        selective = table.loc[table["factor"] == "emotion", "selective"].to_numpy()
        found.append(selective[:n])
        false.append(selective[n:])
        if reference is not None:
            old = reference(meta, x)
            old_found.append(old[:n])
            old_false.append(old[n:])

    def summary(hits: list, misses: list) -> dict:
        hits, misses = np.concatenate(hits), np.concatenate(misses)
        return {"power": float(hits.mean()),
                "false_discovery_share": float(misses.sum() / max(hits.sum() + misses.sum(), 1))}

    out = {"planted": {**planted, "of": units, "null": "slopes_0.3", "runs": runs}, **summary(found, false)}
    if reference is not None:
        out["replaced"] = summary(old_found, old_false)
    return out


def cross_fit_power(planted: dict, units: int, runs: int, permutations: int, seed: int = 0,
                    folds: int = 4) -> dict:
    """The cross-fitted selection on planted data (slopes 0.3; ``planted`` on one emotion, no top_k
    cap): the share of planted units named (for the planted level) in some fold, the share of
    rows that name a null unit, and of the rows at another level those that are null units; with
    the rows' held-out tests: the share of planted rows that replicate."""
    from speechneurons.stats.selection import SelectionSettings, select_units

    n, level = planted["units"], planted["level"]
    named, rows_null, other_rows, other_null, replicated, rows_all = [], 0, 0, 0, [], 0
    settings = SelectionSettings(top_k=units, random_controls=0, folds=folds, permutations=permutations)
    for run in range(runs):
        meta, x = null_data("slopes_0.3", units, seed + 1000 * run + 31, planted=planted)
        chosen, _, _ = select_units(matrix_of(meta, x), meta, NO_SELECTIVITY, SPEC, settings)
        crossed = chosen[chosen["reason"] == "cross_fit"]
        at_level = crossed[crossed["emotion"] == level]
        named.append(np.isin(np.arange(n), at_level["neuron"].to_numpy()))
        is_null = crossed["neuron"].to_numpy() >= n
        rows_all += len(crossed)
        rows_null += int(is_null.sum())
        elsewhere = (crossed["emotion"] != level).to_numpy()
        other_rows += int(elsewhere.sum())
        other_null += int((elsewhere & is_null).sum())
        planted_rows = at_level[at_level["neuron"] < n]
        replicated.append(((planted_rows["heldout_q"] < 0.05) & (planted_rows["heldout_d"] > 0)).to_numpy())
    named_all = np.concatenate(named)
    kept = np.concatenate(replicated) if replicated else np.zeros(0)
    return {"planted": {**planted, "of": units, "null": "slopes_0.3", "runs": runs, "folds": folds},
            "named_in_some_fold": float(named_all.mean()),
            "rows": rows_all, "rows_naming_a_null_unit": float(rows_null / max(rows_all, 1)),
            "rows_at_another_level": other_rows,
            "null_share_of_rows_at_another_level": float(other_null / other_rows) if other_rows else float("nan"),
            "planted_rows_replicated_held_out": float(kept.mean()) if len(kept) else float("nan")}


# the selected units: question 2, bootstrap interval, knock-out --------------------

#: an empty selectivity table: the selection below ranks without the study-wide test
NO_SELECTIVITY = pd.DataFrame(columns=["site", "layer", "neuron", "factor", "eta2", "F_speaker", "p_speaker",
                                       "q_speaker", "q_perm", "p_perm", "selective", "df_speaker_den"])

def attribution_totals(meta: pd.DataFrame, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[clips, units] per-clip total attribution that follows the activation (plus its own noise),
    so that units chosen for their activation on some speakers look driven on those speakers."""
    return x + rng.normal(size=x.shape)


def selected_units_null(kind: str, units: int, runs: int, seed: int = 0, folds: int = 4) -> dict:
    """Under a null with no emotion unit, the units a study names (top 2 per level by the
    speaker-level d, no selective filter: the strongest selection) and their tests:

    - ``question_2``: the cross-fitted attribution_p (held-out speakers) and, on the same data,
      the Welch t on speaker means of the units chosen on every speaker (the test it replaced);
    - ``bootstrap``: coverage of the true 0 by the held-out 95 % interval of the level contrast.
    """
    from speechneurons.questions import target_encoding
    from speechneurons.reliability.bootstrap import held_out_effects
    from speechneurons.stats.selection import SelectionSettings, select_units

    new_p, old_p, covered = [], [], []
    settings = SelectionSettings(top_k=2, random_controls=0, folds=folds, require_selective=False)
    empty = NO_SELECTIVITY
    for run in range(runs):
        rng = np.random.default_rng(seed + 1000 * run + 5)
        meta, x = null_data(kind, units, seed + 1000 * run + 3)
        matrix = matrix_of(meta, x)
        selected, _, _ = select_units(matrix, meta, empty, SPEC, settings)
        totals = attribution_totals(meta, x, rng)
        chosen = selected[selected["reason"].isin(["top_k", "cross_fit"])]
        columns = chosen["neuron"].unique()
        clip_units = pd.concat([meta.assign(site="hidden", layer=np.int32(1), neuron=np.int32(c),
                                            total=totals[:, c], abs_mass=1.0, loud_share=0.5,
                                            peak_time_s=1.0) for c in columns], ignore_index=True)
        table = target_encoding(selected, clip_units, SPEC)
        new_p.append(table["attribution_p"].to_numpy())
        # the replaced test: chosen on every speaker, Welch on speaker means of level vs the rest
        for row in selected[selected["reason"] == "top_k"].itertuples(index=False):
            values = pd.Series(totals[:, row.neuron])
            inside = (meta["emotion"] == row.emotion).to_numpy()
            a = values[inside].groupby(meta.loc[inside, "actor"].to_numpy()).mean()
            b = values[~inside].groupby(meta.loc[~inside, "actor"].to_numpy()).mean()
            old_p.append(stats.ttest_ind(a, b, equal_var=False).pvalue)
        effects = pd.DataFrame(held_out_effects(matrix, meta, selected, SPEC)).dropna(subset=["effect_low"])
        covered.append(((effects["effect_low"] <= 0) & (effects["effect_high"] >= 0)).to_numpy())
    cover = np.concatenate(covered)
    return {"question_2": {"attribution_p": rates(np.concatenate(new_p)),
                           "replaced_test_p": rates(np.array(old_p))},
            "bootstrap": {"interval_covers_0": float(cover.mean()),
                          "se": float(np.sqrt(0.95 * 0.05 / len(cover))), "n": len(cover)}}


def knockout_null(kind: str, width: int, runs: int, seed: int = 0, folds: int = 4,
                  random_sets: int = 4) -> dict:
    """Knock-out under a null with no special unit: layer 1 holds the null activations, layer 2
    computes from layer 1 (x W + noise), units are chosen on training speakers (top 2 per level,
    no selective filter) and knocked out on the held-out ones. Returns the mean selected-vs-random
    specificity difference over runs with its SE, and the rates of its p."""
    from speechneurons.knockout.effects import knockout_effects
    from speechneurons.knockout.sets import KnockoutSettings, knockout_sets
    from speechneurons.probes import ProbeSettings
    from speechneurons.stats.selection import SelectionSettings, select_units

    differences, p = [], []
    empty = NO_SELECTIVITY
    for run in range(runs):
        rng = np.random.default_rng(seed + 1000 * run + 11)
        meta, layer1 = null_data(kind, width, seed + 1000 * run + 7)
        weights = np.eye(width) + 0.2 * rng.normal(size=(width, width)) / np.sqrt(width)
        noise = 0.3 * rng.normal(size=layer1.shape)
        matrix = matrix_of(meta, np.hstack([layer1, layer1 @ weights + noise]), layers=2)
        selected, _, _ = select_units(matrix, meta, empty, SPEC,
                                   SelectionSettings(top_k=2, random_controls=0, folds=folds,
                                                     require_selective=False))
        selected = selected[selected["layer"] == 1]
        sets = knockout_sets(selected, matrix, SPEC, KnockoutSettings(random_sets=random_sets,
                                                                      seed=run))
        speakers = meta["speaker"].astype(str).to_numpy()
        knocked = {}
        for s in sets.itertuples(index=False):
            held = np.isin(speakers, list(s.held_out))
            changed = layer1[held].copy()
            changed[:, s.neurons] = s.values
            knocked[s.set_id] = np.hstack([changed, changed @ weights + noise[held]]).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, summary = knockout_effects(matrix, knocked, sets, meta, SPEC,
                                          ProbeSettings(alphas=(10.0,), inner_folds=2, permutations=0))
        differences.append(summary["specificity_difference"].to_numpy())
        p.append(summary["p"].to_numpy())
    run_means = np.array([np.nanmean(d) for d in differences])
    return {"specificity_difference_mean": float(run_means.mean()),
            "se": float(run_means.std(ddof=1) / np.sqrt(len(run_means))) if len(run_means) > 1 else float("nan"),
            "runs": len(run_means), "p": rates(np.concatenate(p))}


# question 3 ---------------------------------------------------------------------

def temporal_null(runs: int, seed: int = 0, actors: int = 24) -> dict:
    """Question 3 under the null: per clip and unit, positive attributions over 150 segments of 20 ms
    with a speaker-specific random shape over time (log-normal, SD 0.5 per 0.15 s) and clip noise;
    the bins are exchangeable, so every bin's true mean share is 1/20 of normalised time. Returns
    the coverage of 1/20 by the 95 % band of ``temporal_profiles`` (normalised alignment), and
    the loudness table's p when the loud share is the loud time share plus speaker and clip
    noise of mean 0."""
    from speechneurons.prosody import ProsodyTracks
    from speechneurons.questions import temporal_profiles, loudness_table

    covered, p = [], []
    starts = np.arange(150) * 0.02
    segments = pd.DataFrame({"segment": np.arange(150), "start_s": starts, "end_s": starts + 0.02,
                             "loud": True})
    units = pd.DataFrame({"site": "hidden", "layer": [1, 1], "neuron": [0, 1]})
    for run in range(runs):
        rng = np.random.default_rng(seed + run)
        meta = full_design(actors=range(1, actors + 1), emotions=["neutral", "happy", "sad", "angry"])
        shape = rng.normal(0, 0.5, size=(actors + 1, 20))  # per speaker, per 0.15 s of the clip

        def curves():
            for row in meta.itertuples(index=False):
                level = np.repeat(shape[row.actor], 150 // 20 + 1)[:150]
                yield row.clip_id, units, np.exp(level + rng.normal(0, 0.5, size=(2, 150))), segments

        table = temporal_profiles(curves(), meta, SPEC, ProsodyTracks.empty())
        normal = table[(table["alignment"] == "normalised") & (table["site"] == "all")]
        covered.append(((normal["ci_low"] <= 0.05) & (normal["ci_high"] >= 0.05)).to_numpy())
        share = 0.5 + rng.normal(0, 0.1, len(meta))
        speaker = rng.normal(0, 0.05, size=actors + 1)[meta["actor"].to_numpy()]
        clip_units = meta.assign(site="hidden", layer=1, neuron=0, loud_time_share=share,
                                 loud_share=share + speaker + rng.normal(0, 0.1, len(meta)))
        p.append(loudness_table(clip_units, SPEC)["p"].to_numpy())
    cover = np.concatenate(covered)
    return {"band_covers_true_share": float(cover.mean()), "se": float(np.sqrt(0.95 * 0.05 / len(cover))),
            "bands": len(cover), "loudness_p": rates(np.concatenate(p))}


# questions 4 and 5 --------------------------------------------------------------

def group_contrast_null(runs: int, units: int, seed: int = 0) -> dict:
    """Question 4 under the null of no sex difference, 6 female against 12 male speakers, the
    female speakers' means four times as variable: Welch (this) against Student (replaced)."""
    from speechneurons.questions import group_contrasts

    new_p, old_p = [], []
    for run in range(runs):
        rng = np.random.default_rng(seed + run)
        meta = full_design(actors=range(1, 19), emotions=["neutral", "happy"])
        meta["gender"] = np.where(meta["actor"] <= 6, "female", "male")
        sd = np.where(np.arange(19) <= 6, 2.0, 0.5)
        totals = (rng.normal(size=(19, units)) * sd[:, None])[meta["actor"]] + rng.normal(size=(len(meta), units))
        clip_units = pd.concat([meta.assign(site="hidden", layer=1, neuron=u, total=totals[:, u], fold=-1)
                                for u in range(units)], ignore_index=True)
        activations = clip_units[["clip_id", "site", "layer", "neuron"]].assign(value=clip_units["total"])
        table, _ = group_contrasts(clip_units, activations, SPEC)
        new_p.append(table["attribution_p"].to_numpy())
        means = pd.DataFrame(totals).groupby(meta["actor"].to_numpy()).mean().to_numpy()
        old_p.append(stats.ttest_ind(means[6:], means[:6], axis=0).pvalue)
    return {"welch_p": rates(np.concatenate(new_p)), "replaced_student_p": rates(np.concatenate(old_p))}


def graded_null(kind: str, runs: int, units: int, seed: int = 0) -> dict:
    """Question 5 (strong - normal intensity, paired within speaker) under a null."""
    from speechneurons.questions import graded_effects, graded_measures

    p = []
    for run in range(runs):
        meta, x = null_data(kind, units, seed + 1000 * run + 13)
        clip_units = pd.concat([meta.assign(site="hidden", layer=1, neuron=u, total=x[:, u], fold=-1)
                                for u in range(units)], ignore_index=True)
        activations = clip_units[["clip_id", "site", "layer", "neuron"]].assign(value=0.0)
        table, _ = graded_effects(graded_measures(clip_units, activations, SPEC), SPEC)
        p.append(table.loc[table["measure"] == "attribution", "p"].to_numpy())
    return {"p": rates(np.concatenate(p))}


# probes ------------------------------------------------------------------------

def probe_null(kind: str, layers: int, width: int, permutations: int, seed: int = 0,
               relabel: Callable | None = None) -> dict:
    """Layer probes of emotion and sex on null layers: share of layers with p_perm <= 0.05 and the
    mean of the null balanced accuracy against chance. ``relabel`` replaces the null's relabelling
    (to measure the one this replaced)."""
    from unittest import mock

    import speechneurons.probes as probes

    settings = probes.ProbeSettings(folds=4, inner_folds=2, alphas=(1.0, 10.0), permutations=permutations,
                                    seed=seed)
    meta, x = null_data(kind, layers * width, seed + 31)
    matrix = matrix_of(meta, x, layers=layers)
    patch = mock.patch.object(probes, "relabellings", relabel or probes.relabellings)
    with patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, _ = probes.layer_probes(matrix, meta, SPEC, settings, progress=False)
    out = {}
    for factor in ("emotion", "gender"):
        rows = table[table["factor"] == factor]
        out[factor] = {"p_perm_at_most_05": rate(rows["p_perm"].to_numpy() - 1e-12, 0.05),
                       "null_mean_minus_chance": float((rows["null_mean"] - rows["chance"]).mean()),
                       "layers": len(rows), "min_p": 1 / (permutations + 1)}
    return out


def clip_shuffle_relabel(labels: np.ndarray, speakers: np.ndarray, within: bool, count: int,
                         rng: np.random.Generator) -> np.ndarray:
    """The probes' null before issue 18 ([count, n], as :func:`speechneurons.probes.relabellings`):
    clips shuffled inside each speaker (cells broken apart); whole speakers for a between factor."""
    out = np.repeat(labels[None], count, axis=0)
    if within:
        for speaker in np.unique(speakers):
            rows = np.flatnonzero(speakers == speaker)
            order = np.argsort(rng.random((count, len(rows))), axis=1)
            out[:, rows] = labels[rows][order]
        return out
    from speechneurons.probes import relabellings

    return relabellings(labels, speakers, False, count, rng)


def prosody_null(runs: int, units: int = 20, planted: int = 0, size: float = 0.25, seed: int = 0,
                 actors: int = 24, segments: int = 35) -> dict:
    """The prosody test (:mod:`speechneurons.unit_prosody`) under a realistic null, and its power.

    Per run, ``actors`` speakers record 4 to 14 clips each (unbalanced) of
    ``segments`` segments. Per segment, six measures (AR(1) over time,
    rho 0.8; intensity correlated 0.5 with F0; F0, its slope and HNR
    missing in a third of the segments, in runs, as unvoiced stretches are).
    Each unit's attribution is a speaker intercept (SD 1), speaker x
    measure slopes on every measure (SD 0.3, mean 0), and clip noise that is
    AR(1) (rho 0.5) with an SD growing with the segment's loudness
    (exp(0.3 x intensity z)). The first ``planted`` units add ``size`` x the
    F0 measure (in every speaker, on top of the slopes). Returns the rates at
    0.05 and 0.001 of the null units' p (marginal and partial), the share of
    (run, measure) families of null units with any BH q < 0.05, and the share
    of planted units found for F0 (q < 0.05) and, with intensity held fixed,
    still found (partial q < 0.05) while their intensity q is mostly not.
    """
    from speechneurons.prosody import MEASURES
    from speechneurons.unit_prosody import CONTROL, clip_correlations, fisher_z, unit_table

    control = MEASURES.index(CONTROL)
    f0 = MEASURES.index("f0_st")
    p, partial_p, families, found, found_partial, intensity_found = [], [], [], [], [], []

    def ar(rng, n, rho, shape):
        out = np.empty((*shape, n))
        out[..., 0] = rng.normal(size=shape)
        for t in range(1, n):
            out[..., t] = rho * out[..., t - 1] + np.sqrt(1 - rho ** 2) * rng.normal(size=shape)
        return out

    for run in range(runs):
        rng = np.random.default_rng(seed + 7919 * run)
        counts = rng.integers(4, 15, size=actors)
        speaker = np.repeat(np.arange(actors), counts)
        intercept = rng.normal(size=(actors, units))
        slopes = rng.normal(0, 0.3, size=(actors, units, len(MEASURES)))
        slopes[:, :planted, f0] += size
        rows = []
        for clip, who in enumerate(speaker):
            base = ar(rng, segments, 0.8, (len(MEASURES),))  # [measures, segments]
            base[control] = 0.5 * base[f0] + np.sqrt(0.75) * base[control]
            unvoiced = ar(rng, segments, 0.8, ()) < -0.43  # about a third, in runs
            measures = base.T.copy()
            measures[unvoiced, f0] = np.nan
            measures[unvoiced, MEASURES.index("f0_slope_st_per_s")] = np.nan
            measures[unvoiced, MEASURES.index("hnr_db")] = np.nan
            noise = ar(rng, segments, 0.5, (units,)) * np.exp(0.3 * base[control])[None]
            curve = intercept[who][:, None] + np.einsum("um,ms->us", slopes[who], np.nan_to_num(base)) + noise
            rho, part = clip_correlations(curve, measures, control)
            rows.append(pd.DataFrame({"clip_id": str(clip), "speaker": str(who), "fold": -1, "site": "hidden",
                                      "layer": 1, "neuron": np.repeat(np.arange(units), len(MEASURES)),
                                      "measure": np.tile(MEASURES, units), "z": fisher_z(rho).ravel(),
                                      "partial_z": fisher_z(part).ravel()}))
        z = pd.concat(rows, ignore_index=True)
        tested = z[["clip_id", "speaker", "fold", "site", "layer", "neuron"]].drop_duplicates()
        z = z.drop(columns=["speaker", "fold"])
        labels = tested[["fold", "site", "layer", "neuron"]].drop_duplicates().assign(chosen_for="explicit")
        null_rows = unit_table(z[z["neuron"] >= planted], tested[tested["neuron"] >= planted], labels, 0.05)
        p.append(null_rows["p"].to_numpy())
        partial_p.append(null_rows["partial_p"].dropna().to_numpy())
        families.extend((null_rows.groupby("measure")["q"].min() < 0.05).tolist())
        if planted:
            table = unit_table(z, tested, labels, 0.05)
            mine = table[table["neuron"] < planted].set_index(["neuron", "measure"])
            found.extend((mine.xs("f0_st", level="measure")["q"] < 0.05).tolist())
            found_partial.extend((mine.xs("f0_st", level="measure")["partial_q"] < 0.05).tolist())
            intensity_found.extend((mine.xs(CONTROL, level="measure")["q"] < 0.05).tolist())
    out = {"p": rates(np.concatenate(p)), "partial_p": rates(np.concatenate(partial_p)),
           "families_with_any_q_below_05": share(families)}
    if planted:
        out.update({"planted_found_f0": share(found), "planted_found_f0_partial": share(found_partial),
                    "planted_found_intensity": share(intensity_found)})
    return out
