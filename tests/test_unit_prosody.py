"""Which acoustic measures a unit's attribution follows: equality with scipy, a known answer through
Praat, cross-fitting, calibration under a realistic null, and the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import stats

from speechneurons.calibration import prosody_null
from speechneurons.datasets.ravdess import SPEC
from speechneurons.prosody import ProsodySettings, ProsodyTracks, prosody_tracks
from speechneurons.prosody_report import findings, plot_prosody, prosody_page
from speechneurons import questions
from speechneurons.prosody import MEASURES
from speechneurons.unit_prosody import clip_correlations, unit_prosody, unit_table

RATE = 16_000


def test_clip_correlations_are_spearman_and_partial_spearman():
    """Against scipy's spearmanr on the segments with a value, and the partial correlation as the
    correlation of rank residuals after regressing both ranks on the control's ranks."""
    rng = np.random.default_rng(3)
    curve = rng.normal(size=(4, 30))
    curve[3] = 0.0  # a unit that never moves: no correlation
    measures = rng.normal(size=(30, 3))
    measures[:, 1] += 0.6 * measures[:, 2]
    measures[[2, 5, 11, 12], 1] = np.nan  # unvoiced segments have no F0
    measures[:, 0] = np.nan
    measures[:4, 0] = [1.0, 2.0, 3.0, 4.0]  # four values only: fewer than MIN_SEGMENTS
    rho, partial = clip_correlations(curve, measures, control=2)
    finite = np.isfinite(measures[:, 1])
    for u in range(3):
        assert rho[u, 1] == pytest.approx(stats.spearmanr(curve[u, finite], measures[finite, 1]).statistic, abs=1e-12)
        assert rho[u, 2] == pytest.approx(stats.spearmanr(curve[u], measures[:, 2]).statistic, abs=1e-12)
        ry, rx, rc = (stats.rankdata(v) for v in (curve[u, finite], measures[finite, 1], measures[finite, 2]))
        design = np.column_stack([np.ones(len(rc)), rc])
        residual = [v - design @ np.linalg.lstsq(design, v, rcond=None)[0] for v in (ry, rx)]
        assert partial[u, 1] == pytest.approx(np.corrcoef(*residual)[0, 1], abs=1e-12)
    assert np.isnan(rho[:, 0]).all() and np.isnan(rho[3]).all() and np.isnan(partial[:, 2]).all()


def speech_like(rng: np.random.Generator, seconds: float, base_hz: float):
    """A harmonic voice whose F0 (semitones re ``base_hz``) and level (dB) follow two independent
    slow contours, with a pause of 0.2 s in the middle. Returns (wave, f0_st, level_db) per sample."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0_st = 3.0 * np.sin(2 * np.pi * t / rng.uniform(0.6, 1.2) + rng.uniform(0, 2 * np.pi))
    level_db = 8.0 * np.sin(2 * np.pi * t / rng.uniform(0.6, 1.2) + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(base_hz * 2 ** (f0_st / 12)) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 9))
    amplitude = 0.05 * 10 ** (level_db / 20)
    pause = (t >= seconds / 2 - 0.1) & (t < seconds / 2 + 0.1)
    amplitude[pause] = 0.0
    wave = amplitude * voice + 1e-4 * rng.normal(size=len(t))
    return wave, np.where(pause, np.nan, f0_st), np.where(pause, np.nan, level_db)


def test_a_planted_f0_unit_and_a_planted_loudness_unit_through_praat(tmp_path):
    """Eight speakers, three clips each of a synthetic voice whose pitch and loudness move
    independently. Unit 0's attribution follows the true pitch, unit 1's the true loudness (each
    speaker with their own slope, mean 1, SD 0.3, plus noise), unit 2 follows nothing. Through the
    stage (WAV files -> Praat's tracks -> segment summaries) and the test: unit 0 follows F0 and not
    intensity, unit 1 the reverse, unit 2 neither."""
    rng = np.random.default_rng(11)
    segment_s, seconds = 0.1, 2.0
    starts = np.arange(0, seconds - 1e-9, segment_s)
    segments = pd.DataFrame({"segment": np.arange(len(starts)), "start_s": starts, "end_s": starts + segment_s})
    units = pd.DataFrame({"site": "hidden", "layer": 3, "neuron": [0, 1, 2]})
    rows, curves = [], []
    for speaker in range(1, 9):
        base = 110.0 if speaker % 2 else 210.0
        slopes = rng.normal(1.0, 0.3, size=2)
        for take in range(3):
            wave, f0_st, level_db = speech_like(rng, seconds, base)
            clip_id = f"s{speaker}-{take}"
            sf.write(tmp_path / f"{clip_id}.wav", wave, RATE)
            rows.append({"clip_id": clip_id, "path": f"{clip_id}.wav", "speaker": str(speaker),
                         "gender": "male" if speaker % 2 else "female"})
            index = (np.arange(len(wave)) // (segment_s * RATE)).astype(int)
            true_f0 = pd.Series(f0_st).groupby(index).mean().to_numpy()
            true_level = pd.Series(level_db).groupby(index).mean().to_numpy()

            def follows(truth, slope):
                z = (truth - np.nanmean(truth)) / np.nanstd(truth)
                return np.nan_to_num(slope * z) + rng.normal(0, 0.7, size=len(truth))

            curve = np.vstack([follows(true_f0, slopes[0]), follows(true_level, slopes[1]),
                               rng.normal(0, 1, size=len(starts))])
            curves.append((clip_id, units, curve, segments))
    clips = pd.DataFrame(rows)
    settings = ProsodySettings(pitch_range={"male": [75, 300], "female": [100, 500]})
    tracks, failed = prosody_tracks(clips, tmp_path, settings, group="gender", progress=False)
    assert failed.empty and tracks["clip_id"].nunique() == 24
    selected = units.assign(reason="explicit", fold=-1)
    clip_units = clips[["clip_id", "speaker"]].merge(units, how="cross")
    tables = unit_prosody(curves, ProsodyTracks(tracks), questions.tested_pairs(clip_units, selected), selected, SPEC, 0.05)
    table = tables["prosody_units"].set_index(["neuron", "measure"])
    assert table.loc[(0, "f0_st"), "q"] < 0.001 and table.loc[(0, "f0_st"), "mean_rho"] > 0.4
    assert table.loc[(0, "f0_st"), "partial_q"] < 0.001 and table.loc[(0, "intensity_db"), "q"] > 0.05
    assert table.loc[(1, "intensity_db"), "q"] < 0.001 and table.loc[(1, "intensity_db"), "mean_rho"] > 0.4
    assert table.loc[(1, "f0_st"), "partial_q"] > 0.05
    assert (table.loc[2, "q"].dropna() > 0.05).all()
    assert (table["n_speakers"] == 8).all() and (table["n_clips"] == 24).all()
    layers = tables["prosody_layers"].set_index("measure")
    assert layers.loc["f0_st", "n_following"] == 1 and layers.loc["intensity_db", "n_following"] == 1


def test_a_cross_fitted_unit_is_tested_only_on_the_speakers_that_did_not_choose_it():
    """Fold 0 chose unit 5 on speakers 1-3 and holds out 4-6. An association planted in the choosing
    speakers only is invisible; the held-out speakers' own is what the table reports."""
    speakers = [str(s) for s in range(1, 7)]
    clip_units = pd.DataFrame({"clip_id": [f"{s}-{k}" for s in speakers for k in range(4)],
                               "speaker": [s for s in speakers for _ in range(4)]}).assign(
        site="hidden", layer=2, neuron=5)
    selected = pd.DataFrame({"site": ["hidden"], "layer": [2], "neuron": [5], "reason": ["cross_fit"], "fold": [0],
                             "emotion": ["angry"], "held_out": [["4", "5", "6"]]})
    tested = questions.tested_pairs(clip_units, selected)
    assert set(tested["speaker"]) == {"4", "5", "6"}
    chosen_by = clip_units["speaker"].isin(["1", "2", "3"]).to_numpy()
    rng = np.random.default_rng(0)
    z = pd.DataFrame({"clip_id": np.repeat(clip_units["clip_id"], len(MEASURES)), "site": "hidden", "layer": 2,
                      "neuron": 5, "measure": np.tile(MEASURES, len(clip_units)),
                      "z": np.where(np.repeat(chosen_by, len(MEASURES)), 2.0, rng.normal(0, 0.3, 6 * 24)),
                      "partial_z": 0.0})
    labels = pd.DataFrame({"fold": [0], "site": ["hidden"], "layer": [2], "neuron": [5], "chosen_for": ["angry"]})
    table = unit_table(z, tested, labels, 0.05)
    assert (table["n_speakers"] == 3).all() and (table["n_clips"] == 12).all()
    assert (table["chosen_for"] == "angry").all() and (table["mean_rho"].abs() < 0.5).all()
    held = z[~np.repeat(chosen_by, len(MEASURES))]
    f0 = held[held["measure"] == "f0_st"].assign(speaker=lambda d: d["clip_id"].str[0]).groupby("speaker")["z"].mean()
    assert table.set_index("measure").loc["f0_st", "p"] == pytest.approx(stats.ttest_1samp(f0, 0).pvalue)


def test_calibration_under_speaker_slopes_unbalanced_clips_and_loudness_dependent_noise():
    """The realistic null of speechneurons.calibration.prosody_null (speaker intercepts and
    speaker x measure slopes, 4-14 clips per speaker, autocorrelated noise that grows with
    loudness, measures that correlate): p holds at 0.05 and 0.001, and BH keeps complete-null
    families clean; a planted F0 unit (size 0.5) is found, also with intensity held fixed."""
    null = prosody_null(runs=12, units=20, seed=5)
    assert 0.03 <= null["p"]["0.05"]["rate"] <= 0.07 and null["p"]["0.001"]["rate"] <= 0.004
    assert 0.03 <= null["partial_p"]["0.05"]["rate"] <= 0.07
    assert null["families_with_any_q_below_05"]["share"] <= 0.12
    power = prosody_null(runs=4, units=10, planted=5, size=0.5, seed=9)
    assert power["planted_found_f0"]["share"] >= 0.9 and power["planted_found_f0_partial"]["share"] >= 0.9


def test_findings_and_the_page_escape_what_the_data_names(tmp_path):
    layers = pd.DataFrame({
        "site": "hidden", "layer": [3, 3, 4], "chosen_for": ["<script>alert(1)</script>", "random control", "sad"],
        "measure": ["f0_st", "f0_st", "pause_share"], "n_units": 4, "n_following": [2, 0, 0],
        "share_following": [0.5, 0, 0], "n_speakers": 12, "mean_rho": [0.31, 0.01, -0.05],
        "ci_low": [0.2, -0.05, -0.1], "ci_high": [0.4, 0.07, 0.0], "t": 1.0, "p": [1e-5, 0.6, 0.2],
        "q": [3e-5, 0.6, 0.3], "partial_rho": [0.28, 0.0, -0.04], "partial_ci_low": 0.0, "partial_ci_high": 0.0,
        "partial_p": [1e-4, 0.7, 0.3], "partial_q": [2e-4, 0.7, 0.4]})
    units = pd.DataFrame({"measure": ["f0_st", "f0_st"], "follows": [True, False], "mean_rho": [0.3, 0.1]})
    items = findings(layers, units, "emotion", 0.05)
    assert items[0][1] == ("In hidden 3, the attributions of units chosen for emotion <script>alert(1)</script> are "
                           "larger where F0 (semitones re speaker) is higher: rho +0.31 [+0.20, +0.40] over 12 "
                           "held-out speakers, q = 3e-05; 2 of 4 units follow it on their own. With intensity "
                           "held fixed: rho +0.28, q = 0.0002.")
    assert len(items) == 2 and items[1][1].startswith("1 of 2 tested units follow F0")
    page = prosody_page("title", items, ["a <b>note</b>"])
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;note" in page
    fig = plot_prosody(layers, "emotion", 0.05)
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "F0 (semitones re speaker)"
    nothing = findings(layers.assign(q=0.5), units.iloc[:0], "emotion", 0.05)
    assert nothing[0][0] == "No layer follows a measure" and "strongest was F0" in nothing[0][1]
