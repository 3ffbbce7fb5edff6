"""Decoding to 16 kHz mono float32 with soundfile + soxr."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_files import write_tone
from speechneurons.audio import AudioError, load_waveform, read_header_and_check


def test_real_clip_resamples_from_48k(demo_root):
    path = demo_root / "Actor_06" / "03-01-05-02-01-01-06.wav"
    raw, rate = sf.read(path, dtype="float32")
    wave = load_waveform(path)
    assert rate == 48_000 and wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == round(len(raw) / 3)
    # same loudness after resampling (band-limited speech keeps its energy)
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(np.sqrt(np.mean(raw**2)), rel=0.02)


def test_stereo_odd_rate_becomes_mono_16k(tmp_path):
    path = write_tone(tmp_path / "tone.wav", seconds=2.0, rate=22_050, channels=2, freq=440.0,
                      subtype="FLOAT")
    wave = load_waveform(path)
    assert len(wave) == 32_000
    # a 440 Hz tone stays a 440 Hz tone: its spectrum peaks there
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / 16_000)[spectrum.argmax()] == pytest.approx(440, abs=1)
    assert np.abs(wave).max() == pytest.approx(0.3, abs=0.01)


def test_unreadable_file_names_itself(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    with pytest.raises(AudioError, match="bad.wav"):
        load_waveform(bad)
    with pytest.raises(AudioError, match="cannot decode"):
        read_header_and_check(bad)
