"""Small versions of bench/calibration.py: each table's test under the realistic null that breaks it.

Bounds are nominal + 3 binomial SE (a test that cannot fail is a defect: each
bound is crossed by the test it replaced, checked here where it is cheap).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from speechneurons import calibration as cal


@pytest.fixture(autouse=True)
def quiet():
    logging.disable(logging.WARNING)
    with np.errstate(all="ignore"):
        yield
    logging.disable(logging.NOTSET)


def within(result: dict, alpha: str, slack: float = 3.0) -> bool:
    value = result[alpha]
    return value["rate"] <= float(alpha) + slack * value["se"]


def test_selectivity_holds_in_the_tail_under_level_and_speaker_dependent_noise():
    """Heteroscedastic null, 4,000 units: T^2 / Welch at 0.05 and 0.001; no BH discovery."""
    result = cal.selectivity_null("heteroscedastic", 2000, runs=2, permutations=199, seed=3)
    for factor in ("emotion", "gender", "intensity", "statement"):
        for column in ("p_speaker", "p_perm"):
            assert within(result[factor][column], "0.05"), (factor, column)
        assert within(result[factor]["p_speaker"], "0.001"), factor
        assert result[factor]["p_speaker"]["0.05"]["rate"] > 0.02  # not conservative to uselessness


def test_cross_fitted_question_2_and_interval_hold_under_the_null():
    """Units chosen by the strongest selection (top 2 by speaker d, no filter) on null data whose
    attributions follow the activations: the held-out test holds its level and its interval
    covers 0; the replaced test of the units chosen on every speaker does not (Welch on
    paired data: about 0 rejections, useless)."""
    result = cal.selected_units_null("slopes_0.3", 120, runs=3, seed=1)
    q2 = result["question_2"]
    assert within(q2["attribution_p"], "0.05") and q2["attribution_p"]["0.05"]["rate"] > 0.005
    assert q2["replaced_test_p"]["0.05"]["rate"] < 0.02
    cover = result["bootstrap"]
    assert cover["interval_covers_0"] >= 0.95 - 3 * cover["se"]


def test_knockout_of_cross_fitted_units_costs_no_more_than_random_units_under_the_null():
    result = cal.knockout_null("slopes_0.3", 16, runs=6, seed=5)
    assert abs(result["specificity_difference_mean"]) <= 3 * result["se"] + 1e-3
    assert within(result["p"], "0.05")


def test_question_4_is_welch_over_speakers():
    """6 against 12 speakers, the smaller group four times as variable: Student's t rejects
    about 15 % at 0.05, Welch's holds."""
    result = cal.group_contrast_null(runs=4, units=100, seed=2)
    assert within(result["welch_p"], "0.05")
    assert result["replaced_student_p"]["0.05"]["rate"] > 0.10


def test_question_5_holds_under_speaker_slopes():
    assert within(cal.graded_null("slopes_0.6", runs=2, units=100, seed=4)["p"], "0.05")


def test_probe_nulls_sit_at_chance():
    """Between-speaker sex: folds re-stratified on each relabelling keep the null mean at chance
    (stratified on the true labels it sat at 0.484); within-speaker emotion likewise."""
    result = cal.probe_null("slopes_0.6", layers=4, width=8, permutations=9, seed=6)
    for factor in ("emotion", "gender"):
        assert abs(result[factor]["null_mean_minus_chance"]) < 0.01, factor


def test_temporal_bands_cover_the_true_share_under_speaker_shapes():
    result = cal.temporal_null(runs=3, seed=8)
    assert result["band_covers_true_share"] >= 0.95 - 3 * result["se"]
    assert result["band_covers_true_share"] < 1.0  # a band that always covers says nothing


def test_selective_finds_planted_units_the_replaced_test_missed():
    """20 of 1,000 units +0.8 clip-noise SD on angry in every actor, slopes 0.3: the repeated-measures
    F with its tail-resolved sign flips calls at least 95 % of them selective (bench: 1.00, where
    Hotelling's T^2 found 0.86), with at most a stray null unit beside them."""
    result = cal.planted_power({"units": 20, "level": "angry", "size": 0.8}, 1000, runs=1, permutations=999,
                               seed=21)
    assert result["power"] >= 0.95
    assert result["false_discovery_share"] <= 0.15


def test_the_cross_fitted_selection_names_planted_units_for_their_level():
    """+0.8 SD on angry: every planted unit named for angry in some fold, no row at another level
    naming a null unit beyond BH's share, and most planted rows replicate on held-out actors."""
    result = cal.cross_fit_power({"units": 10, "level": "angry", "size": 0.8}, 500, runs=1, permutations=999,
                                 seed=4)
    assert result["named_in_some_fold"] >= 0.9
    assert result["rows_naming_a_null_unit"] <= 0.1 and result["rows"] >= 20
    assert result["planted_rows_replicated_held_out"] >= 0.5


def test_held_out_tests_of_cross_fitted_rows_hold_under_the_null():
    """Units chosen on training actors by the strongest selection (top 5 per level, untested) on a
    null with speaker slopes and level-dependent noise: their held-out one-sample t holds 0.05, and
    the replication table reports a rate for every layer (not NaN)."""
    from speechneurons.datasets.ravdess import SPEC
    from speechneurons.stats.selection import SelectionSettings, select_units

    p, rates = [], []
    for run in range(3):
        meta, x = cal.null_data("heteroscedastic", 200, seed=50 + run)
        chosen, replication, _ = select_units(cal.matrix_of(meta, x, layers=2), meta, cal.NO_SELECTIVITY, SPEC,
                                              SelectionSettings(top_k=5, folds=4, random_controls=0,
                                                                require_selective=False))
        p.append(chosen.loc[chosen["reason"] == "cross_fit", "heldout_p"].to_numpy())
        rates += replication["replication_rate"].tolist()
    result = cal.rates(np.concatenate(p))
    assert result["0.05"]["n"] >= 3 * 4 * 2 * 5 * 6  # runs x folds x layers x k x (levels with a test)
    assert within(result, "0.05") and result["0.05"]["rate"] > 0.01
    assert len(rates) == 6 and np.isfinite(rates).all()
