"""Selectivity statistics: equal to scipy/statsmodels, calibrated under speaker-structured nulls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from speechneurons.activations import ActivationMatrix
from speechneurons.stats.mixed import fit_mixed
from speechneurons.stats.oneway import cohens_d, kruskal, oneway
from speechneurons.stats.permutation import permutation_pvalues, permute_labels
from speechneurons.stats.selection import SelectionSettings, select_units
from speechneurons.stats.selectivity import StatsSettings, bh, selectivity, speaker_f

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def design(actors: int = 12, per_cell: int = 4, seed: int = 0) -> pd.DataFrame:
    """A RAVDESS-like design: every actor says every emotion at both intensities."""
    rows = []
    for actor in range(1, actors + 1):
        for emotion in EMOTIONS:
            for i in range(per_cell):
                rows.append({"clip_id": f"a{actor:02d}-{emotion}-{i}", "actor": actor,
                             "gender": "male" if actor % 2 else "female", "emotion": emotion,
                             "intensity": "normal" if i % 2 else "strong",
                             "statement": 1 + (i // 2) % 2, "repetition": 1})
    return pd.DataFrame(rows)


def noise_units(meta: pd.DataFrame, units: int, seed: int, actor_sd: float = 1.0) -> np.ndarray:
    """[clips, units]: actor effects plus noise, independent of every label."""
    rng = np.random.default_rng(seed)
    actor_effect = rng.normal(0, actor_sd, size=(meta["actor"].max() + 1, units))
    return actor_effect[meta["actor"].to_numpy()] + rng.normal(size=(len(meta), units))


def test_oneway_equals_scipy_and_statsmodels():
    meta = design()
    x = noise_units(meta, 5, seed=1)
    x[:, 0] += (meta["emotion"] == "sad").to_numpy() * 1.5
    codes = meta["emotion"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    result = oneway(x, codes, 4)
    for unit in range(5):
        groups = [x[codes == level, unit] for level in range(4)]
        f, p = stats.f_oneway(*groups)
        assert result.f[unit] == pytest.approx(f, rel=1e-9)
        assert result.p_f[unit] == pytest.approx(p, rel=1e-6, abs=1e-300)
        table = anova_lm(smf.ols("y ~ C(g)", pd.DataFrame({"y": x[:, unit], "g": codes})).fit())
        ss_b, ss_w = table["sum_sq"].iloc[0], table["sum_sq"].iloc[1]
        ms_w = table["mean_sq"].iloc[1]
        assert result.eta2[unit] == pytest.approx(ss_b / (ss_b + ss_w), rel=1e-9)
        assert result.omega2[unit] == pytest.approx((ss_b - 3 * ms_w) / (ss_b + ss_w + ms_w), rel=1e-9)


def test_kruskal_equals_scipy_with_ties():
    meta = design()
    x = np.round(noise_units(meta, 4, seed=2), 1)  # rounding makes ties
    codes = meta["emotion"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    h, p = kruskal(x, codes, 4)
    for unit in range(4):
        expected = stats.kruskal(*[x[codes == level, unit] for level in range(4)])
        assert h[unit] == pytest.approx(expected.statistic, rel=1e-9)
        assert p[unit] == pytest.approx(expected.pvalue, rel=1e-6)


def test_cohens_d_matches_the_t_test():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 3))
    group = np.arange(50) < 20
    x[group] += 0.8
    d = cohens_d(x, group)
    t = stats.ttest_ind(x[group], x[~group]).statistic
    np.testing.assert_allclose(d, t * np.sqrt(1 / 20 + 1 / 30), rtol=1e-9)


def test_bh_equals_statsmodels():
    p = np.random.default_rng(4).uniform(size=300) ** 3
    np.testing.assert_allclose(bh(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_permutation_schemes_keep_the_actor_structure():
    meta = design(actors=6, per_cell=2)
    rng = np.random.default_rng(5)
    codes = meta["emotion"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    actors = meta["actor"].to_numpy()
    within = permute_labels(codes, actors, "within_actor", rng)
    assert not np.array_equal(within, codes)
    for actor in np.unique(actors):
        assert sorted(within[actors == actor]) == sorted(codes[actors == actor])
    gender = (meta["gender"] == "female").to_numpy().astype(int)
    between = permute_labels(gender, actors, "between_actors", rng)
    per_actor = pd.Series(between).groupby(actors).nunique()
    assert (per_actor == 1).all() and between.sum() == gender.sum()
    with pytest.raises(ValueError, match="constant within each actor"):
        permute_labels(codes, actors, "between_actors", rng)


def test_null_p_values_are_uniform_and_fdr_finds_nothing():
    meta = design()
    x = noise_units(meta, 600, seed=6, actor_sd=2.0)
    codes = meta["emotion"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    p = permutation_pvalues(x, codes, 4, meta["actor"].to_numpy(), "within_actor", 199, seed=1)
    # uniform within binomial tolerance (600 units: sd of a 5 % count is 5.3)
    assert 0.03 <= (p <= 0.05).mean() <= 0.075
    assert 0.43 <= (p <= 0.5).mean() <= 0.57
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert (bh(p) < 0.05).sum() == 0


def test_speaker_f_is_the_repeated_measures_anova():
    """The actor-blocked F equals statsmodels' OLS with actor as a block, emotion tested."""
    meta = design()
    x = noise_units(meta, 3, seed=10, actor_sd=2.0)
    x[:, 2] += (meta["emotion"] == "angry").to_numpy() * 0.5
    codes = meta["emotion"].map({e: i for i, e in enumerate(EMOTIONS)}).to_numpy()
    f, p, *_ = speaker_f(x, codes, 4, meta["actor"].to_numpy(), "within_actor")
    gender = (meta["gender"] == "female").to_numpy().astype(int)
    f_g, p_g, *_ = speaker_f(x, gender, 2, meta["actor"].to_numpy(), "between_actors")
    for unit in range(3):
        frame = meta.assign(y=x[:, unit])
        table = anova_lm(smf.ols("y ~ C(actor) + C(emotion)", frame).fit(), typ=2)
        assert f[unit] == pytest.approx(table.loc["C(emotion)", "F"], rel=1e-8)
        assert p[unit] == pytest.approx(table.loc["C(emotion)", "PR(>F)"], rel=1e-6)
        actor_means = frame.groupby("actor").agg(y=("y", "mean"), gender=("gender", "first"))
        t = stats.ttest_ind(actor_means.y[actor_means.gender == "female"],
                            actor_means.y[actor_means.gender == "male"])
        assert f_g[unit] == pytest.approx(t.statistic**2, rel=1e-8)
        assert p_g[unit] == pytest.approx(t.pvalue, rel=1e-6)


@pytest.fixture(scope="module")
def planted():
    """2,000 noise units with actor effects; unit 0 prefers sad; unit 1 is actor-only."""
    meta = design()
    x = noise_units(meta, 2000, seed=7)
    x[:, 0] += (meta["emotion"] == "sad").to_numpy() * 1.2
    # actor-only: each actor has its own level (male actors 0.8 higher on average), no emotion
    actor_level = np.zeros(meta["actor"].max() + 1)
    actor_level[1::2] = [2.8, -1.2, 3.0, -1.0, 1.5, -0.3]  # odd = male actors 1, 3, ..., 11
    actor_level[2::2] = [-2.8, 1.2, -3.0, 1.0, -1.5, 0.3]  # even = female actors 2, ..., 12
    x[:, 1] = actor_level[meta["actor"]] + 0.3 * np.random.default_rng(8).normal(size=len(meta))
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat([1, 2], 1000).astype(np.int32),
                          "neuron": np.tile(np.arange(1000), 2).astype(np.int32)})
    matrix = ActivationMatrix(clip_ids=meta["clip_id"].tolist(), units=units, values=x)
    table, replication = selectivity(
        matrix, meta, StatsSettings(permutations=199, mixed_top_units=3, replication_top=10))
    return meta, matrix, table, replication


def test_planted_emotion_unit_is_found(planted):
    _, _, table, _ = planted
    emotion = table[table["factor"] == "emotion"].reset_index(drop=True)
    assert emotion["p_speaker"].idxmin() == 0
    assert emotion.loc[0, "p_perm"] == pytest.approx(1 / 200)  # no permutation beats it
    assert emotion.loc[0, "q_speaker"] < 1e-6 and emotion.loc[0, "selective"]
    # planted +1.2 over a total SD of about 1.4 (noise and actor): d about 0.85
    assert emotion.loc[0, "preferred_level"] == "sad" and 0.7 < emotion.loc[0, "preference_d"] < 1.0
    assert emotion["selective"].sum() <= 3  # FDR: at most a stray noise unit beside it
    assert emotion.loc[0, "mixed_p"] < 1e-6  # the mixed model agrees
    assert emotion.loc[0, "replicated"]


def test_actor_only_unit_is_not_selective(planted):
    _, _, table, _ = planted
    unit = table[(table["layer"] == 1) & (table["neuron"] == 1)].set_index("factor")
    assert not unit.loc["emotion", "selective"] and unit.loc["emotion", "p_perm"] > 0.05
    assert unit.loc["emotion", "p_speaker"] > 0.05
    # pooling clips pretends 192 independent samples: naive F calls it a gender unit
    assert unit.loc["gender", "p_F"] < 1e-6
    # with the actor as the unit of replication (6 + 6 actors), it is not
    assert unit.loc["gender", "p_speaker"] > 0.05 and unit.loc["gender", "p_perm"] > 0.05
    assert not unit.loc["gender", "selective"]


def test_selectivity_table_shape(planted):
    _, _, table, replication = planted
    assert len(table) == 2000 * 4
    assert set(table["factor"]) == {"emotion", "gender", "intensity", "statement"}
    gender = table[table["factor"] == "gender"]
    assert (gender["contrast"] == "female - male").all()
    assert gender["cohens_d"].notna().all()
    assert list(replication["factor"]) == ["emotion", "gender", "intensity", "statement"]
    assert replication.loc[0, "n_selected"] == 10


def test_mixed_model_recovers_planted_effects():
    meta = design()
    rng = np.random.default_rng(9)
    actor = rng.normal(0, 1.0, size=meta["actor"].max() + 1)[meta["actor"]]
    y = actor + 0.8 * (meta["intensity"] == "strong").to_numpy() + rng.normal(0, 1.0, size=len(meta))
    fit = fit_mixed(y, meta)
    assert fit["converged"]
    assert fit["p_intensity"] < 1e-6 and fit["p_emotion"] > 0.01
    assert 0.2 < fit["actor_icc"] < 0.8  # planted 1 / (1 + 1) = 0.5


def test_selection_picks_the_planted_unit_and_matched_controls(planted):
    meta, matrix, table, _ = planted
    settings = SelectionSettings(top_k=2, random_controls=3, seed=1,
                                 explicit=[{"site": "hidden", "layer": 2, "neuron": 5}])
    chosen = select_units(matrix, meta, table, settings)
    top_sad = chosen[(chosen["reason"] == "top_k") & (chosen["emotion"] == "sad") & (chosen["layer"] == 1)]
    assert top_sad.iloc[0]["neuron"] == 0 and top_sad.iloc[0]["rank"] == 1
    assert len(chosen[chosen["reason"] == "top_k"]) == 2 * 4 * 2  # layers x emotions x k
    controls = chosen[chosen["reason"] == "random_control"]
    assert sorted(controls.groupby("layer").size().tolist()) == [3, 3]
    for layer, picked in chosen[chosen["reason"] != "random_control"].groupby("layer"):
        assert set(controls[controls["layer"] == layer]["neuron"]).isdisjoint(picked["neuron"])
    again = select_units(matrix, meta, table, settings)
    pd.testing.assert_frame_equal(chosen, again)
    with pytest.raises(ValueError, match=r"selection.explicit\[0\]"):
        select_units(matrix, meta, table, SelectionSettings(explicit=[{"layer": 7, "neuron": 0}]))
