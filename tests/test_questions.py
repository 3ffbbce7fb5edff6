"""The five research-question tables: columns, and planted effects with the right sign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from speechneurons import questions
from speechneurons.prosody import ClipEvents, ProsodyTracks
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.time_grid import overlap_weights

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def clip_table() -> pd.DataFrame:
    """12 actors x 4 emotions x 2 statements x 2 intensities (neutral: normal only) x 2 repetitions."""
    return full_design(actors=range(1, 13), emotions=EMOTIONS)


def clip_units_for(clips: pd.DataFrame, units: list[tuple[str, int, int]], total) -> pd.DataFrame:
    """Per (clip, unit) summaries; ``total(clips, unit, rng)`` gives the per-clip totals."""
    rng = np.random.default_rng(1)
    parts = []
    for unit in units:
        values = total(clips, unit, rng)
        parts.append(clips.assign(site=unit[0], layer=unit[1], neuron=unit[2], total=values,
                                  abs_mass=np.abs(values) + 1, loud_share=0.5, loud_time_share=0.5,
                                  peak_time_s=1.0))
    return pd.concat(parts, ignore_index=True)


def test_layer_specialisation_shares():
    sel = pd.DataFrame({
        "site": "hidden", "layer": np.repeat([1, 2], 10), "neuron": np.tile(np.arange(10), 2),
        "factor": "emotion", "selective": [True] * 8 + [False] * 2 + [True] + [False] * 9,
        "eta2": np.r_[np.full(10, 0.3), np.full(10, 0.05)], "omega2": 0.0, "F_speaker": 1.0,
        "cohens_d": np.nan,
    })
    table = questions.layer_specialisation(sel).set_index("layer")
    assert table.loc[1, "share_selective"] == pytest.approx(0.8)
    assert table.loc[2, "share_selective"] == pytest.approx(0.1)
    assert table.loc[1, "median_eta2"] > table.loc[2, "median_eta2"]
    assert {"n_units", "n_selective", "median_omega2", "max_eta2"} <= set(table.columns)


def test_target_encoding_finds_the_planted_sign():
    clips = clip_table()
    angry_unit, flat_unit = ("hidden", 1, 0), ("hidden", 1, 1)

    def total(c, unit, rng):
        bump = 1.5 * (c["emotion"] == "angry").to_numpy() if unit == angry_unit else 0.0
        return bump + rng.normal(size=len(c))

    clip_units = clip_units_for(clips, [angry_unit, flat_unit], total)
    held_out = [str(a) for a in range(1, 7)]  # fold 0 chose on actors 7-12, is tested on 1-6
    selected = pd.DataFrame({"site": "hidden", "layer": 1, "neuron": [0, 1, 0], "emotion": ["angry", "sad", "angry"],
                             "reason": ["cross_fit", "cross_fit", "top_k"], "fold": [0, 0, -1],
                             "held_out": [held_out, held_out, []], "rank": 1, "score": [1.0, 0.2, 1.1],
                             "q_perm": 0.5})
    table = questions.target_encoding(selected, clip_units, SPEC).set_index("emotion")
    assert len(table) == 2  # the study-wide top_k row is not tested
    assert table.loc["angry", "attribution_d"] > 1.0 and table.loc["angry", "attribution_dz"] > 2
    assert table.loc["angry", "attribution_q"] < 1e-3
    assert abs(table.loc["sad", "attribution_d"]) < 0.5
    assert table.loc["angry", "n_clips_level"] == 6 * 2 * 2 * 2  # the held-out actors' angry clips
    assert table.loc["angry", "n_speakers_tested"] == 6
    # the paired contrast is the one-sample t of per-actor (angry - mean of the other cells)
    mine = clip_units[(clip_units["neuron"] == 0) & clip_units["actor"].isin(range(1, 7))]
    diff = []
    for _, actor in mine.groupby("actor"):  # each actor's cells: OLS adjusted for intensity, statement
        fit = smf.ols("total ~ 0 + C(emotion) + C(intensity) + C(statement)", actor).fit()
        cells = fit.params.filter(like="C(emotion)")
        diff.append(cells["C(emotion)[angry]"] - cells.drop("C(emotion)[angry]").mean())
    assert table.loc["angry", "attribution_p"] == pytest.approx(stats.ttest_1samp(diff, 0).pvalue, rel=1e-6)


def test_held_out_selectivity_uses_only_the_held_out_speakers():
    """The activation test of a cross-fitted unit equals the speaker-general test run on the fold's
    held-out actors alone; the choosing actors' clips (here made wildly selective) change nothing."""
    from speechneurons.stats.selectivity import speaker_test

    clips = clip_table()
    rng = np.random.default_rng(4)
    value = rng.normal(size=len(clips)) + 2.0 * (clips["emotion"] == "angry").to_numpy()
    choosing = ~clips["actor"].isin(range(1, 7)).to_numpy()
    activations = clips[["clip_id"]].assign(site="hidden", layer=1, neuron=0, value=value)
    loud = activations.copy()
    loud.loc[choosing, "value"] += 50.0 * (clips.loc[choosing, "emotion"] == "sad").to_numpy()
    held_out = [str(a) for a in range(1, 7)]
    selected = pd.DataFrame({"site": "hidden", "layer": 1, "neuron": [0], "emotion": ["angry"],
                             "reason": "cross_fit", "fold": 0, "held_out": [held_out], "rank": 1,
                             "score": 1.0, "q_speaker": 0.01, "selective": True})
    quiet_table = questions.held_out_selectivity(selected, activations, clips, SPEC)
    loud_table = questions.held_out_selectivity(selected, loud, clips, SPEC)
    mine = clips[~choosing].reset_index(drop=True)
    expected, _ = speaker_test(value[~choosing][:, None], mine, SPEC, "emotion", 0, 0)
    assert quiet_table.loc[0, "heldout_p"] == pytest.approx(expected["p_speaker"][0], rel=1e-9)
    assert loud_table.loc[0, "heldout_p"] == pytest.approx(quiet_table.loc[0, "heldout_p"], rel=1e-12)
    assert quiet_table.loc[0, "heldout_speakers"] == 6 and quiet_table.loc[0, "heldout_p"] < 0.05  # T^2 on (3, 3) df
    clip_units = clip_units_for(clips, [("hidden", 1, 0)], lambda c, u, r: r.normal(size=len(c)))
    table = questions.target_encoding(selected, clip_units, SPEC, activations, clips)
    assert table.loc[0, "heldout_q"] == pytest.approx(table.loc[0, "heldout_p"])  # one row: q = p
    assert table.loc[0, "train_q_speaker"] == 0.01 and bool(table.loc[0, "train_selective"])


def test_a_pure_intensity_effect_is_not_a_neutral_effect():
    """Neutral has no strong clips: against a raw 'rest' a strong-intensity unit looks like it
    prefers the other emotions; the paired contrast on intensity-adjusted cells does not."""
    clips = clip_table()
    unit = ("hidden", 1, 0)
    clip_units = clip_units_for(clips, [unit], lambda c, u, rng: 2.0 * (c["intensity"] == "strong").to_numpy()
                                + rng.normal(0, 0.5, size=len(c)))
    everyone = [str(a) for a in range(1, 13)]
    selected = pd.DataFrame({"site": "hidden", "layer": 1, "neuron": [0], "emotion": ["neutral"],
                             "reason": "cross_fit", "fold": 0, "held_out": [everyone], "rank": 1, "score": 1.0})
    table = questions.target_encoding(selected, clip_units, SPEC)
    assert table.loc[0, "attribution_d"] < -0.5  # the clip-level d says 'neutral drives it less'
    assert table.loc[0, "attribution_p"] > 0.01
    assert {"train_q_speaker", "mean_total_level", "mean_total_other", "mean_loud_share"} <= set(table.columns)
    assert not {"eta2", "q_speaker", "p_perm"} & set(table.columns)  # nothing from the choosing speakers


def voiced_tracks(clips, frames=150, voiced=(0.5, 2.5), accents=()):
    """Prosody tracks in which each clip is voiced from voiced[0] to voiced[1] s, with pitch accents
    at the frames whose centres are ``accents``; loud everywhere (the energy flag says nothing)."""
    starts = np.arange(frames) * 0.02
    is_voiced = (starts >= voiced[0]) & (starts < voiced[1])
    accent = np.isin(np.round(starts + 0.01, 3), np.round(accents, 3))
    track = pd.DataFrame({"frame": np.arange(frames), "start_s": starts, "end_s": starts + 0.02,
                          "f0_hz": np.where(is_voiced, 150.0, np.nan), "voiced": is_voiced,
                          "intensity_db": 70.0, "hnr_db": np.where(is_voiced, 20.0, np.nan),
                          "pause": False, "accent": accent})
    return ProsodyTracks(pd.concat([track.assign(clip_id=c, speaker=str(s))
                                    for c, s in zip(clips["clip_id"], clips["speaker"])], ignore_index=True))


def test_temporal_profiles_peak_after_voicing_onset_and_at_accents():
    """Onset and offset are Praat's voicing, not the energy flag: every segment is loud here, voicing
    starts at 0.5 s, and the attribution just after it peaks 0.1-0.2 s after onset; around the
    pitch accents at 0.61 and 2.01 s, at the accent."""
    clips = clip_table().head(16)  # actors 1 and 2... and their clips
    segments = pd.DataFrame({"segment": np.arange(150), "start_s": np.arange(150) * 0.02,
                             "end_s": (np.arange(150) + 1) * 0.02, "loud": True})
    units = pd.DataFrame({"site": ["hidden", "ffn"], "layer": [3, 3], "neuron": [0, 7]})
    curve = np.zeros((2, 150))
    curve[:, 30:35] = 1.0  # 0.60-0.70 s: just after onset at 0.5 s
    curve[:, 100] = 0.5  # 2.00-2.02 s: the second accent
    curve[1, 140] = -0.2
    stream = ((c, units, curve, segments) for c in clips["clip_id"])
    table = questions.temporal_profiles(stream, clips, SPEC, voiced_tracks(clips, accents=(0.61, 2.01)))
    everything = table[(table["site"] == "all") & (table["emotion"] == clips["emotion"].iloc[0])]
    onset = everything[everything["alignment"] == "onset"].set_index("bin_start")
    assert onset["mean_share"].idxmax() == pytest.approx(0.1)  # the 0.1-0.2 s bin after onset
    offset = everything[everything["alignment"] == "offset"].set_index("bin_start")
    assert offset["mean_share"].idxmax() == pytest.approx(-0.5)  # 2.0 s is 0.5 s before offset at 2.5 s
    accent = everything[everything["alignment"] == "accent"].set_index("bin_start")
    # the 50 ms after the first accent hold most of 0.60-0.70 s; the second accent sees only its own segment
    assert accent["mean_share"].idxmax() == pytest.approx(0.0)
    assert accent["bin_unit"].iloc[0] == "seconds from a pitch accent (local F0 maximum)"
    normalised = everything[everything["alignment"] == "normalised"]
    assert normalised["mean_share"].sum() == pytest.approx(1.0)
    assert normalised.loc[normalised["mean_share"].idxmax(), "bin_start"] == pytest.approx(0.2)
    assert {"ci_low", "ci_high", "n_speakers", "bin_unit"} <= set(table.columns)
    assert set(table["site"]) == {"all", "hidden", "ffn"}


def test_profile_bands_of_two_speakers_stay_between_0_and_1():
    """Two speakers who put their attribution in different places: a t-interval of a bin's share
    would run from below 0 to above 1 (the issue saw -1.6 to 1.9); the logit band stays inside and
    holds the mean."""
    clips = clip_table()
    clips = clips[clips["actor"].isin([1, 2])]
    segments = pd.DataFrame({"segment": np.arange(100), "start_s": np.arange(100) * 0.02,
                             "end_s": (np.arange(100) + 1) * 0.02, "loud": True})
    units = pd.DataFrame({"site": ["hidden"], "layer": [1], "neuron": [0]})

    def curve(actor):  # actor 1: everything in the first 10 % of the clip; actor 2: spread evenly
        values = np.zeros((1, 100))
        values[0, :10] = 1.0
        return values if actor == 1 else np.ones((1, 100))

    stream = ((c, units, curve(a), segments) for c, a in zip(clips["clip_id"], clips["actor"]))
    table = questions.temporal_profiles(stream, clips, SPEC, voiced_tracks(clips, frames=100))
    banded = table.dropna(subset=["ci_low"])
    assert len(banded) and (banded["n_speakers"] == 2).all()
    assert (banded["ci_low"] >= 0).all() and (banded["ci_high"] <= 1).all()
    assert (banded["ci_low"] <= banded["mean_share"] + 1e-12).all()
    assert (banded["mean_share"] <= banded["ci_high"] + 1e-12).all()
    first = banded[(banded["alignment"] == "normalised") & (banded["bin"] == 0)]
    assert (first["ci_high"] - first["ci_low"] > 0.5).all()  # two speakers who disagree: a wide band


def test_loudness_enrichment_sign():
    clips = clip_table()
    clip_units = clip_units_for(clips, [("hidden", 2, 4)], lambda c, u, rng: rng.normal(size=len(c)))
    clip_units["loud_share"] = 0.8 + 0.05 * np.random.default_rng(2).normal(size=len(clip_units))
    table = questions.loudness_table(clip_units, SPEC)
    assert (table["enrichment"] > 0.25).all() and (table["q"] < 1e-6).all()


def test_group_contrast_sign_over_speakers():
    clips = clip_table()
    unit = ("hidden", 5, 9)

    def total(c, u, rng):  # female actors +1, plus actor and clip noise
        actor = rng.normal(0, 0.3, size=13)[c["actor"]]
        return (c["gender"] == "female").to_numpy() * 1.0 + actor + rng.normal(0, 0.5, size=len(c))

    clip_units = clip_units_for(clips, [unit, ("hidden", 5, 10)], total).assign(fold=-1)
    activations = clip_units[["clip_id", "site", "layer", "neuron"]].assign(
        value=clip_units["total"].to_numpy() * (clip_units["neuron"] == 9).to_numpy())
    table, unanswered = questions.group_contrasts(clip_units, activations, SPEC)
    table = table.set_index("neuron")
    assert unanswered is None and table.loc[9, "contrast"] == "female - male"
    assert table.loc[9, "attribution_diff"] == pytest.approx(1.0, abs=0.35)
    assert table.loc[9, "attribution_d"] > 1 and table.loc[9, "attribution_p"] < 1e-3
    assert (table.loc[9, "n_speakers_female"], table.loc[9, "n_speakers_male"]) == (6, 6)
    assert table.loc[9, "activation_d"] == pytest.approx(table.loc[9, "attribution_d"])
    # Welch's t over speakers (scipy), for a group of 6 against 6
    speakers = clip_units[clip_units["neuron"] == 9].groupby("actor").agg(t=("total", "mean"), g=("gender", "first"))
    welch = stats.ttest_ind(speakers.t[speakers.g == "female"], speakers.t[speakers.g == "male"], equal_var=False)
    assert table.loc[9, "attribution_p"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert {"attribution_q", "activation_q", "fold"} <= set(table.columns)


def test_graded_effect_is_paired_within_speaker():
    clips = clip_table()
    unit = ("ffn", 4, 2)
    rng = np.random.default_rng(3)
    actor_level = rng.normal(0, 2.0, size=13)  # large actor differences; pairing removes them
    values = actor_level[clips["actor"]] + 0.5 * (clips["intensity"] == "strong") + rng.normal(0, 0.3, len(clips))
    clip_units = clips.assign(site=unit[0], layer=unit[1], neuron=unit[2], total=values, fold=-1)
    activations = clips[["clip_id"]].assign(site=unit[0], layer=unit[1], neuron=unit[2],
                                            value=rng.normal(size=len(clips)))
    table, unanswered = questions.graded_effects(questions.graded_measures(clip_units, activations, SPEC), SPEC)
    assert unanswered is None and set(table["contrast"]) == {"strong - normal"}
    attribution = table[table["measure"] == "attribution"].iloc[0]
    activation = table[table["measure"] == "activation"].iloc[0]
    assert attribution["mean_diff"] == pytest.approx(0.5, abs=0.12) and attribution["p"] < 1e-6
    assert attribution["n_pairs"] == 12 * 3 * 2 and attribution["n_speakers"] == 12
    assert activation["p"] > 0.01


def test_graded_without_pairs_is_an_empty_table_with_columns_and_a_note():
    clips = clip_table()
    unpaired = clips[(clips["intensity"] == "normal") | (clips["actor"] % 2 == 0) & (clips["statement"] == 1)]
    unpaired = unpaired[~((unpaired["intensity"] == "normal") & (unpaired["actor"] % 2 == 0)
                          & (unpaired["statement"] == 1))]
    clip_units = unpaired.assign(site="hidden", layer=1, neuron=0, total=1.0, fold=-1)
    activations = unpaired[["clip_id"]].assign(site="hidden", layer=1, neuron=0, value=0.0)
    table, unanswered = questions.graded_effects(questions.graded_measures(clip_units, activations, SPEC), SPEC)
    assert table.empty and {"measure", "mean_diff", "dz", "p", "q"} <= set(table.columns)
    assert unanswered == ("question 5: no speaker recorded both intensity normal and strong with the same "
                          "emotion, statement")


def test_profiles_of_short_and_long_segments_share_one_time_grid():
    """A clip whose attribution is even over time: 20 ms and 1,000 ms segments give the same profile,
    every bin filled (the issue: at 1,000 ms, bins were empty and one held 0.65 of the mass)."""
    profiles = {}
    for length in (0.02, 1.0):
        starts = np.arange(0, 3.0 - 1e-9, length)
        segments = pd.DataFrame({"segment": np.arange(len(starts)), "start_s": starts,
                                 "end_s": starts + length, "loud": True})
        curve = np.full((2, len(starts)), length)  # attribution proportional to the span: even in time
        profiles[length] = questions.clip_profiles(curve, segments, ClipEvents(0.0, 3.0, np.array([])))
    short, long = profiles[0.02]["normalised"], profiles[1.0]["normalised"]
    assert not np.isnan(long).any() and long == pytest.approx(np.full(20, 0.05))
    assert short == pytest.approx(long)
    assert profiles[1.0]["onset"][:5] == pytest.approx([np.nan] * 5, nan_ok=True)  # before onset
    # a 1 s segment straddling bins splits its share by overlap
    weights = overlap_weights(np.array([0.0]), np.array([1.0]), np.array([0.0, 0.25, 0.5, 2.0]))
    assert weights[0] == pytest.approx([0.25, 0.25, 0.5])


def test_tests_use_each_unit_only_on_the_speakers_that_did_not_choose_it():
    clips = clip_table()
    units = [("hidden", 1, n) for n in range(4)]
    clip_units = clip_units_for(clips, units, lambda c, u, rng: rng.normal(size=len(c)))
    fold0, fold1 = [str(a) for a in range(1, 7)], [str(a) for a in range(7, 13)]
    selected = pd.DataFrame({
        "site": "hidden", "layer": 1, "neuron": [0, 1, 1, 2, 3],
        "reason": ["top_k", "cross_fit", "cross_fit", "random_control", "explicit"],
        "emotion": ["angry", "angry", "sad", None, None], "fold": [-1, 0, 1, -1, -1],
        "held_out": [[], fold0, fold1, [], []], "rank": 1, "score": 1.0})
    tested = questions.tested_pairs(clip_units, selected)
    by_unit = tested.groupby(["neuron", "fold"])["actor"].agg(lambda a: set(a.astype(str)))
    assert 0 not in tested["neuron"].to_numpy()  # chosen on every speaker: in no test
    assert by_unit[(1, 0)] == set(fold0) and by_unit[(1, 1)] == set(fold1)
    assert by_unit[(2, -1)] == by_unit[(3, -1)] == set(fold0) | set(fold1)
    groups, _ = questions.group_contrasts(tested, tested[["clip_id", "site", "layer", "neuron"]].assign(value=0.0),
                                          SPEC)
    assert sorted(zip(groups["fold"], groups["neuron"])) == [(-1, 2), (-1, 3), (0, 1), (1, 1)]
