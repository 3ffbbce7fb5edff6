"""Probes and knock-out with planted truth: where a factor lives, and whether removing units hurts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.knockout.effects import knockout_effects
from speechneurons.knockout.sets import KnockoutSettings, knockout_sets
from speechneurons.probes import (ProbeSettings, RidgeProbe, SpeakerGrams, choose_alpha, layer_probes, probe_factor,
                                  probe_within_factors,
                                  relabellings, ridge_predictions, score, speaker_folds)
from speechneurons.stats.selection import speaker_folds as speaker_folds_of_selection

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def design() -> pd.DataFrame:
    return full_design(actors=range(1, 13), emotions=EMOTIONS)


def matrix_of(meta: pd.DataFrame, blocks: list[np.ndarray]) -> ActivationMatrix:
    width = blocks[0].shape[1]
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat(np.arange(len(blocks)), width).astype("int32"),
                          "neuron": np.tile(np.arange(width), len(blocks)).astype("int32")})
    return ActivationMatrix(meta["clip_id"].tolist(), units, np.hstack(blocks).astype(np.float32))


def test_folds_hold_out_speakers_and_every_group_level():
    meta = design()
    speakers = meta["speaker"].to_numpy()
    for within, factor in [(True, "emotion"), (False, "gender")]:
        folds = speaker_folds(meta[factor].to_numpy(), speakers, 5, within, seed=3)
        assert len(folds) == 5
        assert sorted(np.concatenate([test for _, test in folds])) == list(range(len(meta)))
        for train, test in folds:
            assert set(speakers[train]).isdisjoint(speakers[test])
            if not within:
                assert set(meta[factor].to_numpy()[test]) == {"male", "female"}
    # nulls: within relabels each speaker's whole cells among its own levels, between swaps speakers
    rng = np.random.default_rng(0)
    labels = meta["emotion"].to_numpy()
    drawn = relabellings(labels, speakers, True, 200, rng)
    for shuffled in drawn[:20]:
        pairs = pd.DataFrame({"speaker": speakers, "old": labels, "new": shuffled})
        assert pairs.groupby(["speaker", "old"])["new"].nunique().eq(1).all()  # a cell moves whole
        assert pairs.groupby(["speaker", "new"])["old"].nunique().eq(1).all()  # onto one cell
    # every permutation of a speaker's 4 levels equally likely: each level lands on each about 1/4
    first = drawn[:, speakers == speakers[0]]
    own = labels[speakers == speakers[0]]
    for level in np.unique(own):
        share = (first[:, own == level][:, 0][:, None] == np.unique(own)[None]).mean(axis=0)
        assert np.allclose(share, 0.25, atol=0.1)
    sexes = relabellings(meta["gender"].to_numpy(), speakers, False, 50, rng)
    assert all(pd.Series(row).groupby(speakers).nunique().eq(1).all() for row in sexes)
    assert all(sorted(row) == sorted(meta["gender"]) for row in sexes)


def sklearn_probe(alpha: float):
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeClassifier(alpha=alpha))


@pytest.mark.parametrize("width", [6, 200], ids=["units-fewer-than-clips", "units-more-than-clips"])
def test_the_closed_form_equals_scikit_learn_ridge_for_every_penalty_and_target(width):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, width)) * rng.uniform(0.1, 5, size=width) + rng.normal(size=width)
    x[:, 3] = 2.0  # a constant unit keeps scale 1, as StandardScaler's
    targets, test = rng.normal(size=(60, 5)), x[60:]
    got = ridge_predictions(x[:60], targets, test, [0.3, 10.0, 1000.0])
    assert got.shape == (3, 30, 5)
    for fitted, alpha in zip(got, [0.3, 10.0, 1000.0]):
        expected = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x[:60], targets).predict(test)
        np.testing.assert_allclose(fitted, expected, rtol=1e-9, atol=1e-10)
        alone = ridge_predictions(x[:60], targets, test, [alpha])  # one penalty: a Cholesky solve
        np.testing.assert_allclose(alone[0], expected, rtol=1e-9, atol=1e-10)
    speakers = np.repeat(np.arange(9), 10)  # the first 60 clips are speakers 0..5
    if width < 60:  # the units' Gram matrix of whole speakers from per-speaker sums
        statistics = SpeakerGrams.of(x + 1e3, speakers).centred(np.arange(6))
        scaler = StandardScaler().fit(x[:60])
        centred = x[:60] - scaler.mean_
        np.testing.assert_allclose(statistics[0], centred.T @ centred, rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(statistics[1], scaler.mean_ + 1e3, rtol=1e-12)
        np.testing.assert_allclose(statistics[2], scaler.scale_, rtol=1e-10)
        shared = ridge_predictions(x[:60] + 1e3, targets, test + 1e3, [10.0], statistics)[0]
        np.testing.assert_allclose(shared, got[1], rtol=1e-8, atol=1e-9)
    for levels in (2, 4):
        labels = np.array(["a", "b", "c", "d"][:levels])[rng.integers(0, levels, 60)]
        probe = RidgeProbe.fit(x[:60], labels, 10.0)
        np.testing.assert_array_equal(probe.predict(test), sklearn_probe(10.0).fit(x[:60], labels).predict(test))


def test_the_nested_choice_equals_grid_search_on_the_training_speakers():
    from sklearn.model_selection import GridSearchCV

    meta = design()
    rng = np.random.default_rng(5)
    labels, speakers = meta["emotion"].to_numpy(), meta["speaker"].to_numpy()
    emotion = pd.get_dummies(meta["emotion"])[EMOTIONS].to_numpy(float)
    for strength in (0.0, 0.4, 3.0):  # the chosen penalty moves with the signal
        x = rng.normal(size=(len(meta), 12)) + rng.normal(size=(13, 12))[meta["speaker"]]
        x[:, :4] += strength * emotion
        settings = ProbeSettings(alphas=(0.1, 10.0, 1000.0), inner_folds=3)
        inner = speaker_folds(labels, speakers, 3, True, seed=7)
        search = GridSearchCV(sklearn_probe(1.0), {"ridgeclassifier__alpha": list(settings.alphas)},
                              cv=inner, scoring="balanced_accuracy").fit(x, labels)
        assert choose_alpha(x, labels, speakers, True, settings, seed=7) == search.best_params_["ridgeclassifier__alpha"]


@pytest.mark.parametrize("factor", ["emotion", "gender"])
def test_every_relabelling_through_the_hat_matrix_equals_one_refit_per_relabelling(factor):
    """probe_factor against the plain loop it replaces: scikit-learn refitted per fold and per
    relabelling at each fold's chosen alpha (between: folds dealt without the labels, the same for
    every relabelling), the relabellings drawn by relabellings() from the seed."""
    meta = design()
    rng = np.random.default_rng(6)
    labels, speakers = meta[factor].to_numpy(), meta["speaker"].to_numpy()
    x = rng.normal(size=(len(meta), 10)) + rng.normal(size=(13, 10))[meta["speaker"]]
    x[:, :2] += 0.5 * pd.get_dummies(labels).to_numpy(float)[:, :2]
    within = factor == "emotion"
    settings = ProbeSettings(folds=4, inner_folds=2, alphas=(1.0, 100.0), permutations=6)
    got = probe_factor(x, labels, speakers, within, settings, seed=11)

    folds = speaker_folds(labels, speakers, 4, True, 11)
    alphas = [choose_alpha(x[a], labels[a], speakers[a], within, settings, 11 + k) for k, (a, _) in enumerate(folds)]
    fold_scores = [score(labels[b], sklearn_probe(alpha).fit(x[a], labels[a]).predict(x[b]))
                   for (a, b), alpha in zip(folds, alphas)]
    classes, index = np.unique(labels, return_inverse=True)
    null = []
    for shuffled in classes[relabellings(index, speakers, within, 6, np.random.default_rng(11))]:
        null.append(np.mean([score(shuffled[b], sklearn_probe(alpha).fit(x[a], shuffled[a]).predict(x[b]))
                             for (a, b), alpha in zip(folds, alphas) if len(np.unique(shuffled[a])) > 1]))
    assert got["balanced_accuracy"] == pytest.approx(np.mean(fold_scores), abs=1e-12)
    assert got["median_alpha"] == np.median(alphas) and got["permutations"] == 6
    assert got["null_mean"] == pytest.approx(np.mean(null), abs=1e-12)
    assert got["p_perm"] == pytest.approx((1 + np.sum(np.array(null) >= np.mean(fold_scores))) / 7)


def test_within_speaker_factors_probed_together_equal_each_alone():
    """A layer's within-speaker factors share folds and fits: the same numbers as one at a time."""
    meta = design()
    rng = np.random.default_rng(8)
    speakers = meta["speaker"].to_numpy()
    x = rng.normal(size=(len(meta), 12)) + rng.normal(size=(13, 12))[meta["speaker"]]
    x[:, :4] += 0.8 * pd.get_dummies(meta["emotion"])[EMOTIONS].to_numpy(float)
    x[:, 4] += 0.5 * (meta["intensity"] == "strong")
    factors = [meta[f].astype(str).to_numpy() for f in ("emotion", "intensity", "statement")]
    settings = ProbeSettings(folds=4, inner_folds=2, alphas=(1.0, 30.0, 1000.0), permutations=5)
    together = probe_within_factors(x, factors, speakers, settings, 21, [21, 21, 21])
    for labels, got in zip(factors, together):
        assert got == probe_factor(x, labels, speakers, True, settings, 21)
    assert together[0]["p_perm"] == pytest.approx(1 / 6) and together[2]["balanced_accuracy"] < 0.6


def test_probes_peak_at_the_layer_that_carries_the_factor():
    meta = design()
    rng = np.random.default_rng(1)
    emotion = pd.get_dummies(meta["emotion"])[EMOTIONS].to_numpy(float)
    speaker = rng.normal(size=(13, 16))[meta["speaker"]]
    blocks = [rng.normal(size=(len(meta), 16)) + speaker for _ in range(4)]
    blocks[2][:, :4] += 1.5 * emotion  # layer 2 carries emotion
    table, notes = layer_probes(matrix_of(meta, blocks), meta, SPEC, ProbeSettings(permutations=19),
                                progress=False)
    assert notes == ["probes: with 19 permutations and 16 (layer, factor) rows, q (BH over the rows) "
                     "cannot fall below 0.8; raise probes.permutations to at least 320 for a q that "
                     "can reach 0.05"]
    emo = table[table["factor"] == "emotion"].set_index("layer")
    assert emo["balanced_accuracy"].idxmax() == 2
    bands = table.dropna(subset=["ci_low"])  # 3 folds: bounded bands around each accuracy
    assert len(bands) == len(table) and (bands["ci_low"] >= 0).all() and (bands["ci_high"] <= 1).all()
    assert (bands["ci_low"] <= bands["balanced_accuracy"]).all()
    assert (bands["balanced_accuracy"] <= bands["ci_high"]).all()
    assert emo.loc[2, "ci_low"] > 0.35 and emo.loc[2, "p_perm"] == pytest.approx(1 / 20)
    others = emo.drop(index=2)
    assert (others["balanced_accuracy"] < 0.32).all() and (others["p_perm"] > 0.05).sum() >= 2
    assert (emo["chance"] == 0.25).all() and (emo.loc[2, "median_alpha"] in ProbeSettings().alphas)
    control = table[table["factor"].str.startswith("speaker identity")]
    assert len(control) == 4 and (control["balanced_accuracy"] > 0.8).all()  # speakers are easy here
    assert (control["folds_grouped_by"] == "clip").all() and (emo["folds_grouped_by"] == "speaker").all()


def test_the_default_permutations_let_a_planted_layer_reach_a_q():
    """The same four layers with the default probes.permutations (2,000): the planted layer's p is
    the floor 1 / 2,001 and its q (BH over the 16 rows) is below 0.05, where 19 permutations left
    every q at 0.8 or more; the log has no warning."""
    meta = design()
    rng = np.random.default_rng(1)
    emotion = pd.get_dummies(meta["emotion"])[EMOTIONS].to_numpy(float)
    speaker = rng.normal(size=(13, 16))[meta["speaker"]]
    blocks = [rng.normal(size=(len(meta), 16)) + speaker for _ in range(4)]
    blocks[2][:, :4] += 1.5 * emotion
    assert ProbeSettings().permutations == 2000
    table, notes = layer_probes(matrix_of(meta, blocks), meta, SPEC, ProbeSettings(), progress=False)
    emo = table[table["factor"] == "emotion"].set_index("layer")
    assert emo.loc[2, "p_perm"] == pytest.approx(1 / 2001) and emo.loc[2, "q"] < 0.05
    assert (emo.drop(index=2)["q"] > 0.05).all() and not notes


def test_probe_under_the_null_is_at_chance_and_its_interval_covers_it():
    """40 null layers (speaker intercepts and speaker x emotion slopes, no mean effect)."""
    meta = design()
    labels, speakers = meta["emotion"].to_numpy(), meta["speaker"].to_numpy()
    rng = np.random.default_rng(2)
    emotion = pd.get_dummies(meta["emotion"])[EMOTIONS].to_numpy(float)
    scores, covered = [], 0
    for rep in range(40):
        slopes = rng.normal(0, 0.3, size=(13, 4, 8))[meta["speaker"]]  # each speaker its own pattern
        x = (rng.normal(size=(13, 8))[meta["speaker"]] + np.einsum("ce,cek->ck", emotion, slopes)
             + rng.normal(size=(len(meta), 8)))
        result = probe_factor(x, labels, speakers, True, ProbeSettings(permutations=0, alphas=(10.0,)), rep)
        scores.append(result["balanced_accuracy"])
        covered += result["ci_low"] <= 0.25 <= result["ci_high"]
    assert np.mean(scores) == pytest.approx(0.25, abs=0.02)
    assert covered >= 34  # 95 % intervals: at least 85 % of 40


def cross_fitted(meta: pd.DataFrame, folds: int, units: dict) -> pd.DataFrame:
    """The same units as the cross_fit rows of every fold of the selection's speaker folds."""
    fold_of = speaker_folds_of_selection(meta, SPEC, folds, seed=0)
    frames = []
    for fold in range(folds):
        held = sorted(str(s) for s, f in fold_of.items() if f == fold)
        rows = pd.DataFrame({"site": "hidden", **units, "reason": "cross_fit", "rank": 1})
        frames.append(rows.assign(fold=np.int32(fold), held_out=[held] * len(rows)))
    return pd.concat(frames, ignore_index=True)


def test_knocking_out_a_planted_unit_hurts_its_own_level_and_matched_random_units_do_not():
    meta = design()
    rng = np.random.default_rng(3)
    emotion = pd.get_dummies(meta["emotion"])[EMOTIONS].to_numpy(float)
    layer1 = rng.normal(size=(len(meta), 16))
    layer1[:, :4] += 2.0 * emotion  # unit k carries emotion k
    weights, noise = np.eye(16) + 0.1 * rng.normal(size=(16, 16)), rng.normal(size=(len(meta), 16))

    def forward(x1):  # layer 2 computes from layer 1, as a model would
        return x1 @ weights + 0.3 * noise

    matrix = matrix_of(meta, [rng.normal(size=(len(meta), 16)), layer1, forward(layer1)])
    selected = cross_fitted(meta, 4, {"layer": np.int32(1), "neuron": np.arange(4, dtype="int32"),
                                      "emotion": EMOTIONS})
    sets = knockout_sets(selected, matrix, SPEC, KnockoutSettings(random_sets=3))
    assert len(sets) == 4 * 4 * 4 and set(sets["condition"]) == {"selected", "random"}
    randoms = sets[sets["condition"] == "random"]
    assert all(set(n).isdisjoint(range(4)) for n in randoms["neurons"])  # never a selected unit
    knocked = {}
    speakers = meta["speaker"].astype(str).to_numpy()
    for s in sets.itertuples(index=False):
        assert s.values == pytest.approx(layer1[:, s.neurons].mean(axis=0).tolist(), abs=1e-5)
        held = np.isin(speakers, list(s.held_out))  # a set runs on its fold's speakers only
        changed = layer1[held].copy()
        changed[:, s.neurons] = s.values
        knocked[s.set_id] = np.hstack([changed, changed @ weights + 0.3 * noise[held]]).astype(np.float32)
    per_fold, summary = knockout_effects(matrix, knocked, sets, meta, SPEC,
                                         ProbeSettings(permutations=0))
    assert set(summary["probe_layer"]) == {1, 2} and (summary["n_folds"] == 4).all()
    assert (summary["own_loss_selected"] > 0.2).all()
    assert (summary["own_loss_random"].abs() < 0.1).all()
    assert (summary["ci_low"] > 0).all() and (summary["q"] < 0.05).all()
    assert len(per_fold) == 16 * 4 * 2 and (per_fold["n_test_speakers"] == 3).all()


def test_intervention_sets_units_in_the_forward_pass_of_every_family(tmp_path):
    from speechneurons.models import load_speech_model
    from speechneurons.models.tiny import build_tiny_model
    from speechneurons.models.units import intervene

    for family in ["wavlm", "hubert", "wav2vec2"]:
        model = load_speech_model(str(build_tiny_model(tmp_path / family, family, 0)), device="cpu")
        wave = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 8000)).astype(np.float32))
        wanted = [("hidden", 1), ("hidden", 2)]
        with torch.inference_mode():
            base = model.read(wave, wanted)
            with intervene(model.family, model.model, "hidden", 1, [torch.tensor([3, 5])], [torch.tensor([0.5, -1.0])]):
                knocked = model.read(wave, wanted)
            again = model.read(wave, wanted)  # the hook is gone afterwards
        layer1 = knocked[("hidden", 1)][0]
        assert (layer1[:, 3] == 0.5).all() and (layer1[:, 5] == -1.0).all(), family
        untouched = [i for i in range(layer1.shape[1]) if i not in (3, 5)]
        assert torch.equal(layer1[:, untouched], base[("hidden", 1)][0][:, untouched]), family
        assert not torch.allclose(knocked[("hidden", 2)], base[("hidden", 2)]), family
        assert torch.equal(again[("hidden", 2)], base[("hidden", 2)]), family


def test_knockout_layers_restrict_the_sets():
    meta = design()
    rng = np.random.default_rng(4)
    matrix = matrix_of(meta, [rng.normal(size=(len(meta), 16)) for _ in range(3)])
    selected = cross_fitted(meta, 2, {"layer": np.array([1, 1, 2, 2], dtype="int32"),
                                      "neuron": np.array([0, 1, 0, 1], dtype="int32"),
                                      "emotion": ["happy", "sad", "happy", "sad"]})
    every = knockout_sets(selected, matrix, SPEC, KnockoutSettings(random_sets=2))
    assert sorted(set(every["layer"])) == [1, 2] and len(every) == 2 * 2 * 2 * 3
    only = knockout_sets(selected, matrix, SPEC, KnockoutSettings(random_sets=2, layers=(2,)))
    assert set(only["layer"]) == {2} and len(only) == 2 * 2 * 3
    # a study-wide top_k row is never knocked out: its units were chosen on every speaker
    study = selected.assign(reason="top_k", fold=-1)
    assert knockout_sets(study, matrix, SPEC, KnockoutSettings()).empty
    assert (knockout_sets(selected, matrix, SPEC, KnockoutSettings(value="zero"))["values"]
            .map(lambda v: set(v) == {0.0}).all())
    with pytest.raises(ValueError, match="knockout.value: 'median'"):
        knockout_sets(selected, matrix, SPEC, KnockoutSettings(value="median"))


def test_latents_of_an_sae_get_their_own_sets_beside_the_hidden_units():
    meta = design()
    rng = np.random.default_rng(5)
    hidden = matrix_of(meta, [rng.normal(size=(len(meta), 16)) for _ in range(3)])
    latents = np.abs(rng.normal(size=(len(meta), 24)))
    matrix = ActivationMatrix(hidden.clip_ids, pd.concat([hidden.units, pd.DataFrame(
        {"site": "sae", "layer": np.int32(1), "neuron": np.arange(24, dtype="int32")})], ignore_index=True),
        np.hstack([hidden.values, latents.astype(np.float32)]))
    units = {"layer": np.int32(1), "neuron": np.array([0, 5], dtype="int32"), "emotion": ["happy", "sad"]}
    selected = pd.concat([cross_fitted(meta, 2, units), cross_fitted(meta, 2, units).assign(site="sae")],
                         ignore_index=True)
    only_hidden = knockout_sets(selected, matrix, SPEC, KnockoutSettings(random_sets=2))
    assert set(only_hidden["site"]) == {"hidden"} and len(only_hidden) == 2 * 2 * 3
    both = knockout_sets(selected, matrix, SPEC, KnockoutSettings(random_sets=2), sites=("hidden", "sae"))
    latent_sets = both[both["site"] == "sae"]
    assert len(latent_sets) == 2 * 2 * 3 and latent_sets["set_id"].str.contains("-SAE1-").all()
    chosen = latent_sets[latent_sets["condition"] == "selected"]
    assert chosen["neurons"].map(tuple).isin([(0,), (5,)]).all()
    # a latent is set to its own mean over clips, not a hidden unit's
    for s in chosen.itertuples(index=False):
        assert s.values == pytest.approx(latents[:, s.neurons].mean(axis=0).tolist(), abs=1e-5)
    assert both[both["site"] == "hidden"].drop(columns="set_id").reset_index(drop=True).equals(
        only_hidden.drop(columns="set_id").reset_index(drop=True))
