"""Neurons vs SAE features with planted truth: shares against the Wilson and Newcombe formulas,
a top-k probe that finds the kind that carries the factor, holds its level under a null with
speaker slopes, and never ranks on the speakers it scores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.neurons_vs_features import (KNOCKOUT, PROBE, SHARE, knockout_rows, neurons_vs_features,
                                               plot_neurons_vs_features, share_rows, top_k_probe)
from speechneurons.probes import ProbeSettings

EMOTIONS = ["neutral", "happy", "sad", "angry"]
SETTINGS = ProbeSettings(folds=3, inner_folds=2, alphas=(1.0, 100.0), permutations=0)


def design() -> pd.DataFrame:
    return full_design(actors=range(1, 13), emotions=EMOTIONS)


def layer_data(meta: pd.DataFrame, rng, carriers: int, width: int, effect: float, slope_sd: float = 0.5):
    """[clips, width]: speaker intercepts, speaker x emotion slopes of SD ``slope_sd`` in every
    unit, noise growing with the level, and ``effect`` x (emotion's code) in the first
    ``carriers`` units."""
    speakers = meta["speaker"].to_numpy()
    code = pd.Categorical(meta["emotion"], categories=EMOTIONS).codes
    x = np.zeros((len(meta), width))
    for s in np.unique(speakers):
        mine = speakers == s
        x[mine] += rng.normal(0, 1.0, width)  # intercepts
        slopes = rng.normal(0, slope_sd, (len(EMOTIONS), width))
        x[mine] += slopes[code[mine]]
    signal = np.zeros((len(meta), width))
    signal[:, :carriers] = effect * np.eye(len(EMOTIONS))[code][:, np.arange(carriers) % len(EMOTIONS)]
    x += signal
    return x + rng.normal(size=x.shape) * (0.5 + 0.2 * np.abs(x))


def selectivity_of(site: str, n: int, hits: int, factor: str = "emotion") -> pd.DataFrame:
    return pd.DataFrame({"site": site, "layer": 1, "neuron": np.arange(n), "factor": factor,
                         "selective": np.arange(n) < hits})


def wilson(hits: int, n: int, z: float = stats.norm.ppf(0.975)) -> tuple[float, float]:
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_shares_and_their_intervals_follow_wilson_and_newcombe():
    table = pd.concat([selectivity_of("hidden", 32, 4), selectivity_of("sae", 64, 20),
                       selectivity_of("ffn", 64, 60)], ignore_index=True)
    (row,) = share_rows(table, "hidden", 1)
    assert row["measure"] == SHARE and (row["neurons"], row["latents"]) == (4 / 32, 20 / 64)
    assert (row["neurons_low"], row["neurons_high"]) == pytest.approx(wilson(4, 32), abs=1e-12)
    assert (row["latents_low"], row["latents_high"]) == pytest.approx(wilson(20, 64), abs=1e-12)
    # Newcombe's hybrid score interval of the difference: from the two Wilson intervals
    (l1, u1), (l2, u2), d = wilson(20, 64), wilson(4, 32), 20 / 64 - 4 / 32
    newcombe = (d - np.sqrt((20 / 64 - l1) ** 2 + (u2 - 4 / 32) ** 2),
                d + np.sqrt((u1 - 20 / 64) ** 2 + (4 / 32 - l2) ** 2))
    assert (row["difference_low"], row["difference_high"]) == pytest.approx(newcombe, abs=1e-12)
    assert share_rows(selectivity_of("hidden", 32, 4), "hidden", 1) == []  # no latents: no row


def test_the_kind_that_carries_the_factor_wins_the_top_k_probe():
    meta = design()
    rng = np.random.default_rng(0)
    kinds = {"neurons": layer_data(meta, rng, carriers=0, width=32, effect=0.0),
             "latents": layer_data(meta, rng, carriers=4, width=48, effect=2.5)}
    scores = top_k_probe(kinds, meta, SPEC, "emotion", 4, SETTINGS, seed=0)
    assert len(scores["neurons"]) == 3
    assert scores["latents"].mean() > 0.6 and abs(scores["neurons"].mean() - 0.25) < 0.1
    # through the table: the paired difference over folds and its interval
    units = pd.DataFrame({"site": ["hidden"] * 32 + ["sae"] * 48, "layer": 1,
                          "neuron": np.r_[np.arange(32), np.arange(48)]})
    matrix = ActivationMatrix(meta["clip_id"].tolist(), units,
                              np.hstack([kinds["neurons"], kinds["latents"]]).astype(np.float32))
    selectivity = pd.concat([selectivity_of("hidden", 32, 0), selectivity_of("sae", 48, 4)])
    knockout = pd.DataFrame({"site": ["hidden", "hidden", "sae", "sae"], "layer": 1, "probe_layer": 1,
                             "level": ["happy", "sad"] * 2, "own_loss_selected": [0.1, 0.3, 0.5, 0.7],
                             "own_loss_random": [0.0, 0.2, 0.1, 0.1], "n_folds": 4})
    one_factor = dataclasses.replace(SPEC, factors=tuple(f for f in SPEC.factors if f.name == "emotion"),
                                     group=None, graded=None)
    table, notes = neurons_vs_features(matrix, meta, selectivity, knockout, one_factor, "hidden", [1, 2], 4,
                                       SETTINGS)
    assert notes == ["neurons vs features: sae layer 2 has no latents (its SAE was not trained)"]
    assert list(table["measure"]) == [SHARE, PROBE, KNOCKOUT]
    probe = table[table["measure"] == PROBE].iloc[0]
    assert probe["latents"] == pytest.approx(scores["latents"].mean())
    assert probe["difference_low"] > 0 and probe["top_k"] == 4 and probe["n_folds"] == 3
    assert probe["chance"] == 0.25
    knock = table[table["measure"] == KNOCKOUT].iloc[0]
    assert (knock["neurons"], knock["latents"]) == pytest.approx((0.1, 0.5))
    fig = plot_neurons_vs_features(table)
    assert [ax.get_title() for ax in fig.axes][:2] == [SHARE, f"{PROBE} (k = 4)"]


def test_a_null_with_speaker_slopes_keeps_the_difference_interval_honest():
    """No kind carries emotion, every unit has speaker x emotion slopes: the 95 % interval of the
    paired difference excludes 0 in about 5 % of runs, and a probe ranked on held-out speakers
    would not be at chance (the check that ranking stays on the training speakers)."""
    meta = design()
    runs, excluded, accuracies = 60, 0, []
    for run in range(runs):
        rng = np.random.default_rng(100 + run)
        kinds = {"neurons": layer_data(meta, rng, 0, 24, 0.0, slope_sd=0.8),
                 "latents": layer_data(meta, rng, 0, 24, 0.0, slope_sd=0.8)}
        scores = top_k_probe(kinds, meta, SPEC, "emotion", 4, SETTINGS, seed=run)
        difference = scores["latents"] - scores["neurons"]
        low, high = stats.t.interval(0.95, len(difference) - 1, loc=difference.mean(), scale=stats.sem(difference))
        excluded += not low <= 0 <= high
        accuracies += [scores["neurons"].mean(), scores["latents"].mean()]
    assert excluded / runs <= 0.12  # 5 % expected; 0.12 is 2.6 SE above it at 60 runs
    assert abs(np.mean(accuracies) - 0.25) < 0.02  # chance: nothing leaked from the scored speakers


def test_knock_out_rows_need_both_kinds_at_the_layer():
    spec = SPEC
    only_hidden = pd.DataFrame({"site": ["hidden"], "layer": [1], "probe_layer": [1], "level": ["happy"],
                                "own_loss_selected": [0.2], "own_loss_random": [0.1], "n_folds": [2]})
    assert knockout_rows(only_hidden, spec, "hidden", 1) == []
    assert knockout_rows(pd.DataFrame(), spec, "hidden", 1) == []
    both = pd.concat([only_hidden, only_hidden.assign(site="sae")])
    assert knockout_rows(both, spec, "ffn", 1) == []  # latents of ffn layers are not knocked out
    (row,) = knockout_rows(both, spec, "hidden", 1)
    assert row["difference"] == pytest.approx(0.0) and row["neurons"] == pytest.approx(0.1)
