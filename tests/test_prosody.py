"""The prosody track: Praat's F0, intensity, harmonicity and pauses on the model's 20 ms grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import parselmouth
import pytest
from parselmouth.praat import call

from speechneurons.audio import load_waveform
from speechneurons.prosody import (SEGMENT_PROSODY_COLUMNS, ProsodySettings, clip_events, pitch_accents,
                                     pitch_range_errors, prosody_track, segment_prosody, speaker_reference_hz)

RATE = 16_000


def tone(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(int(RATE * seconds)) / RATE)


def test_tones_of_known_frequency_and_level_then_silence():
    wave = np.concatenate([tone(150, 0.6), tone(300, 0.6), np.zeros(RATE // 2)])
    track = prosody_track(wave, RATE)
    assert len(track) == 85 and track["end_s"].iloc[-1] == pytest.approx(1.7)
    centre = (track["start_s"] + track["end_s"]) / 2
    low = track[(centre > 0.1) & (centre < 0.5)]
    high = track[(centre > 0.7) & (centre < 1.1)]
    silent = track[centre > 1.3]
    assert np.allclose(low["f0_hz"], 150, atol=0.05) and np.allclose(high["f0_hz"], 300, atol=0.05)
    # a sine of amplitude 0.5 has RMS 0.354: 20 log10(0.354 / 2e-5) = 84.95 dB
    assert np.allclose(pd_values(low["intensity_db"]), 84.95, atol=0.02)
    assert (low["hnr_db"] > 40).all() and low["voiced"].all() and not low["pause"].any()
    assert not silent["voiced"].any() and silent["pause"].all() and silent["f0_hz"].isna().all()
    assert silent["hnr_db"].isna().all()  # Praat's -200 dB (no periodicity) is missing, not a number


def pd_values(column):
    return column.to_numpy(dtype=float)


def test_the_track_is_praats_own_commands_at_each_frame_centre(demo_root):
    """Praat's scripting commands with every argument at its documented standard value give the
    same numbers (to 1e-12): the track is Praat's analysis, read on the model's grid."""
    wave = load_waveform(demo_root / "Actor_01/03-01-01-01-01-01-01.wav", RATE)
    track = prosody_track(wave, RATE)
    sound = parselmouth.Sound(wave.astype(np.float64), sampling_frequency=RATE)
    pitch = call(sound, "To Pitch (ac)...", 0.01, 75, 15, "no", 0.03, 0.45, 0.01, 0.35, 0.14, 600)
    intensity = call(sound, "To Intensity...", 75, 0.01, "yes")
    centres = (track["start_s"] + 0.01).to_numpy()
    f0 = np.array([call(pitch, "Get value at time", t, "Hertz", "linear") for t in centres])
    level = np.array([call(intensity, "Get value at time", t, "cubic") for t in centres])
    # equal to the last bits or so (the scripting path converts units on its own); NaN where Praat has none
    np.testing.assert_allclose(track["f0_hz"].to_numpy(), f0, rtol=1e-12)
    np.testing.assert_allclose(track["intensity_db"].to_numpy(), level, rtol=1e-12)
    # HNR where voiced, from the pitch analysis's own periodicity (the test below checks its values)
    assert np.array_equal(np.isfinite(track["hnr_db"]), track["voiced"])
    # a spoken sentence: voiced for a good part, with pauses before and after it
    assert 0.2 < track["voiced"].mean() < 0.8 and track["pause"].iloc[:5].all()
    voiced = track.loc[track["voiced"], "f0_hz"]
    assert 75 <= voiced.min() and voiced.max() <= 600


def test_a_floor_above_the_ceiling_names_both():
    with pytest.raises(ValueError, match=r"pitch_floor \(300 Hz\) must be above 0 and below pitch_ceiling \(200 Hz\)"):
        ProsodySettings(pitch_floor=300, pitch_ceiling=200)


def test_segment_summaries_of_a_gliding_voice_against_its_speaker():
    """A voice gliding up an octave per second from 100 Hz, with an unvoiced pause in the middle:
    per 100 ms segment, the mean in semitones relative to the speaker's median, a slope of 12
    semitones per second, and the shares of voiced and paused frames."""
    frames = np.arange(50)
    start = frames * 0.02
    hz = 100 * 2 ** (start + 0.01)  # at each frame's centre
    voiced = (frames < 20) | (frames >= 25)
    track = pd.DataFrame({"frame": frames, "start_s": start, "end_s": start + 0.02,
                          "f0_hz": np.where(voiced, hz, np.nan), "voiced": voiced,
                          "intensity_db": np.where(voiced, 70.0, 30.0), "hnr_db": np.where(voiced, 15.0, np.nan),
                          "pause": ~voiced})
    tracks = pd.concat([track.assign(speaker="a"), track.assign(speaker="b").iloc[:10]])
    reference = speaker_reference_hz(tracks)
    assert reference["a"] == pytest.approx(np.median(hz[voiced])) and reference["b"] == pytest.approx(np.median(hz[:10]))
    edges = np.arange(0, 1.0001, 0.1)
    segments = segment_prosody(track, edges[:-1], edges[1:], reference_hz=100.0)
    assert list(segments.columns) == SEGMENT_PROSODY_COLUMNS and len(segments) == 10
    np.testing.assert_allclose(segments.loc[0, "f0_st"], 12 * np.mean(start[:5] + 0.01))
    np.testing.assert_allclose(segments["f0_slope_st_per_s"].drop(index=4), 12.0)
    assert np.isnan(segments.loc[4, "f0_st"]) and segments.loc[4, "pause_share"] == 1.0  # frames 20-24
    assert segments.loc[0, "voiced_share"] == 1.0 and segments.loc[0, "intensity_db"] == 70.0
    assert np.isnan(segments.loc[4, "hnr_db"]) and segments.loc[9, "hnr_db"] == 15.0


def test_pitch_ranges_per_group_and_their_errors():
    settings = ProsodySettings(pitch_range={"female": [100, 500], "male": [75, 300]})
    assert settings.pitch_bounds("female") == (100, 500) and settings.pitch_bounds("male") == (75, 300)
    assert settings.pitch_bounds("other") == (75, 600) and settings.pitch_bounds(None) == (75, 600)
    with pytest.raises(ValueError, match=r"prosody.pitch_range.male: \[300, 75\]; give \[floor, ceiling\]"):
        ProsodySettings(pitch_range={"male": [300, 75]})
    assert pitch_range_errors(settings, "gender", ["female", "male"]) == []
    assert pitch_range_errors(ProsodySettings(pitch_range={"femal": [100, 500]}), "sex", ["female", "male"]) == [
        "prosody.pitch_range.femal: not a level of sex (its levels: female, male)"]
    assert "no between-speaker group factor" in pitch_range_errors(settings, None, [])[0]


def test_each_group_gets_its_own_pitch_range():
    """A 90 Hz voice with a strong second harmonic: in the male range (and the default) Praat finds
    90 Hz; a female range whose floor is above 90 Hz makes it report the octave above, an octave
    error that a range chosen for the speaker avoids."""
    t = np.arange(RATE) / RATE
    wave = 0.2 * np.sin(2 * np.pi * 90 * t) + 0.4 * np.sin(2 * np.pi * 180 * t)
    settings = ProsodySettings(pitch_range={"male": [75, 300], "female": [120, 500]})
    median = {group: np.nanmedian(prosody_track(wave, RATE, settings, group)["f0_hz"])
              for group in (None, "male", "female")}
    assert median[None] == pytest.approx(90, abs=0.5) and median["male"] == pytest.approx(90, abs=0.5)
    assert median["female"] == pytest.approx(180, abs=2)


def test_pitch_accents_are_prominent_f0_peaks_within_voiced_runs():
    frames = np.arange(60)
    f0 = 100 * 2 ** ((3 * np.exp(-((frames - 15) / 3.0) ** 2) + 0.8 * np.exp(-((frames - 45) / 3.0) ** 2)) / 12)
    voiced = np.ones(60, dtype=bool)
    voiced[30:33] = False
    f0[~voiced] = np.nan
    accent = pitch_accents(f0, voiced, accent_st=1.5)
    assert np.flatnonzero(accent).tolist() == [15]  # the 0.8-semitone bump is not prominent enough
    assert np.flatnonzero(pitch_accents(f0, voiced, accent_st=0.5)).tolist() == [15, 45]
    track = pd.DataFrame({"start_s": frames * 0.02, "end_s": (frames + 1) * 0.02, "voiced": voiced,
                          "accent": accent})
    track.loc[:4, "voiced"] = False
    events = clip_events(track)
    assert (events.voicing_onset_s, events.voicing_offset_s) == pytest.approx((0.1, 1.2))
    assert events.accents_s.tolist() == pytest.approx([0.31])


@pytest.mark.parametrize("true_db", [5.0, 10.0, 20.0, 30.0])
def test_hnr_of_a_voice_in_noise_of_known_ratio(true_db):
    """A 140 Hz harmonic voice plus white noise at a known harmonics-to-noise ratio: the track's
    median HNR over voiced frames is within 0.5 dB of it, and of Praat's own To Harmonicity (cc)
    and (ac) commands at their standard settings (measured: within 0.4 dB for all three)."""
    rng = np.random.default_rng(int(true_db))
    t = np.arange(2 * RATE) / RATE
    voice = sum(np.sin(2 * np.pi * k * 140 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 10))
    noise = rng.normal(size=len(t))
    noise *= np.sqrt(np.mean(voice ** 2) / np.mean(noise ** 2) / 10 ** (true_db / 10))
    wave = 0.1 * (voice + noise)
    track = prosody_track(wave, RATE)
    measured = np.nanmedian(track.loc[track["voiced"], "hnr_db"])
    assert measured == pytest.approx(true_db, abs=0.5)
    sound = parselmouth.Sound(wave, sampling_frequency=RATE)
    for command, periods in (("To Harmonicity (cc)...", 1.0), ("To Harmonicity (ac)...", 4.5)):
        praat = call(sound, command, 0.01, 75, 0.1, periods).values[0]
        assert measured == pytest.approx(np.median(praat[praat > -199]), abs=0.5), command


def test_a_clip_too_short_for_praat_names_the_length_the_floor_and_the_keys():
    with pytest.raises(ValueError, match=r"Praat cannot analyse 0.08 s of audio with a pitch floor of 75 Hz: its "
                                         r"intensity window needs 6.4 periods of the floor, 0.0853 s \(raise "
                                         r"prosody.pitch_floor, or dataset.min_duration_s"):
        prosody_track(tone(150, 0.08), RATE)
    assert len(prosody_track(tone(150, 0.09), RATE)) == 5  # a 0.1 s clip (the index's shortest) works
