"""Prosody per 20 ms frame of a clip, measured with Praat (the first part of issue 23).

Praat (Boersma & Weenink, https://www.praat.org) is the phonetics field's
reference for these measures; ``praat-parselmouth`` (Jadoul, Thompson & de
Boer 2018, J. Phonetics 71:1-15) runs Praat's own code from Python. Per
frame of the model's grid (frame j spans [j, j + 1) x ``hop_s``, the hop of
every supported model: 20 ms), sampled at the frame's centre:

- ``f0_hz``: Praat's autocorrelation pitch (``To Pitch (ac)...``, Boersma
  1993) between ``pitch_floor`` and ``pitch_ceiling`` (Praat's defaults, 75
  and 600 Hz; a male voice is better served by 75-300, a female one by
  100-500), linearly interpolated between voiced analysis frames; NaN where
  unvoiced. Octave errors (halving or doubling) and creaky voice are the
  method's known failures.
- ``voiced``: F0 is defined (Praat's voicing decision).
- ``intensity_db``: Praat's intensity (``To Intensity...``, dB re 2e-5, as
  if the samples were pascal), smoothed over about 3.2 / ``pitch_floor``
  seconds; a digital recording's level, not a calibrated one.
- ``hnr_db``: harmonics-to-noise ratio (``To Harmonicity (cc)...``); NaN
  where Praat finds no periodicity (its -200 dB).
- ``pause``: unvoiced and more than ``silence_db`` below the clip's loudest
  frame (Praat's silence threshold of -25 dB by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from speechneurons.settings import FromConfig

#: Columns and dtypes of a clip's prosody track.
PROSODY_SCHEMA = {
    "frame": "int32", "start_s": "float64", "end_s": "float64", "f0_hz": "float64", "voiced": "bool",
    "intensity_db": "float64", "hnr_db": "float64", "pause": "bool",
}
#: Praat's value for "no periodicity" in a harmonicity object
NO_HARMONICITY = -200.0


@dataclass(frozen=True)
class ProsodySettings(FromConfig):
    """Praat's analysis settings (the ``prosody`` section of the config, once the stage exists)."""

    SECTION: ClassVar[str] = "prosody"

    pitch_floor: float = 75.0
    pitch_ceiling: float = 600.0
    silence_db: float = 25.0
    hop_s: float = 0.02

    def __post_init__(self) -> None:
        if not 0 < self.pitch_floor < self.pitch_ceiling:
            raise ValueError(f"prosody: pitch_floor ({self.pitch_floor:g} Hz) must be above 0 and below "
                             f"pitch_ceiling ({self.pitch_ceiling:g} Hz)")


def prosody_track(wave: np.ndarray, sample_rate: int, settings: ProsodySettings = ProsodySettings()
                  ) -> pd.DataFrame:
    """One row per frame of ``wave`` ([samples], float): :data:`PROSODY_SCHEMA`.

    Praat's analyses run at half the hop and are read at each frame's centre;
    a frame whose centre lies outside an analysis (the clip's first and last
    few tens of ms, where Praat's window does not fit) has NaN there.
    """
    import parselmouth

    sound = parselmouth.Sound(np.asarray(wave, dtype=np.float64), sampling_frequency=float(sample_rate))
    frames = max(1, math.ceil(len(wave) / (settings.hop_s * sample_rate) - 1e-9))
    centres = (np.arange(frames) + 0.5) * settings.hop_s
    step = settings.hop_s / 2
    pitch = sound.to_pitch_ac(time_step=step, pitch_floor=settings.pitch_floor,
                              pitch_ceiling=settings.pitch_ceiling)
    f0 = np.array([pitch.get_value_at_time(t) for t in centres], dtype=np.float64)
    intensity = _sampled(sound.to_intensity(minimum_pitch=settings.pitch_floor, time_step=step), centres)
    hnr = _sampled(sound.to_harmonicity_cc(time_step=step, minimum_pitch=settings.pitch_floor), centres)
    hnr[hnr <= NO_HARMONICITY + 1] = np.nan
    voiced = np.isfinite(f0)
    loudest = np.nanmax(intensity) if np.isfinite(intensity).any() else np.nan
    with np.errstate(invalid="ignore"):
        quiet = ~(intensity >= loudest - settings.silence_db)  # NaN (no analysis) counts as quiet
    return pd.DataFrame({
        "frame": np.arange(frames, dtype=np.int32),
        "start_s": np.arange(frames) * settings.hop_s,
        "end_s": np.minimum((np.arange(frames) + 1) * settings.hop_s, len(wave) / sample_rate),
        "f0_hz": f0, "voiced": voiced, "intensity_db": intensity, "hnr_db": hnr,
        "pause": quiet & ~voiced,
    })


def _sampled(analysis, times: np.ndarray) -> np.ndarray:
    """A Praat time series (Intensity, Harmonicity) read at ``times`` (Praat's own interpolation;
    NaN outside its frames)."""
    values = [analysis.get_value(t) for t in times]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


#: Columns of :func:`segment_prosody`.
SEGMENT_PROSODY_COLUMNS = ["f0_st", "f0_slope_st_per_s", "voiced_share", "intensity_db", "hnr_db", "pause_share"]


def semitones(hz: np.ndarray, reference_hz: float) -> np.ndarray:
    """12 log2(hz / reference_hz): pitch on the scale listeners hear, relative to a speaker."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / reference_hz)


def speaker_reference_hz(tracks: pd.DataFrame) -> pd.Series:
    """Per speaker, the median F0 of the voiced frames of all their clips (``tracks``: prosody
    tracks with a ``speaker`` column); NaN for a speaker with no voiced frame."""
    voiced = tracks[tracks["voiced"]]
    return voiced.groupby("speaker")["f0_hz"].median().reindex(tracks["speaker"].unique())


def segment_prosody(track: pd.DataFrame, starts: np.ndarray, ends: np.ndarray, reference_hz: float
                    ) -> pd.DataFrame:
    """One row per segment [starts[i], ends[i]) seconds of a clip's ``track``
    (:func:`prosody_track`), from the frames whose centre falls in it: :data:`SEGMENT_PROSODY_COLUMNS`.

    f0_st: mean F0 of the voiced frames in semitones relative to ``reference_hz`` (the speaker's
    median: :func:`speaker_reference_hz`); f0_slope_st_per_s: the least-squares slope of those
    semitones over time (three voiced frames at least); voiced_share and pause_share: shares of
    the segment's frames; intensity_db: mean over frames with a value; hnr_db: mean over voiced
    frames with a value. NaN where a segment has no frame for a measure.
    """
    centre = ((track["start_s"] + track["end_s"]) / 2).to_numpy()
    f0 = semitones(track["f0_hz"].to_numpy(), reference_hz)
    voiced = track["voiced"].to_numpy()
    rows = []
    for start, end in zip(np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)):
        inside = (centre >= start) & (centre < end)
        sung = inside & voiced & np.isfinite(f0)
        level = track["intensity_db"].to_numpy()[inside]
        hnr = track["hnr_db"].to_numpy()[sung]
        slope = np.polyfit(centre[sung], f0[sung], 1)[0] if sung.sum() >= 3 else np.nan
        rows.append({
            "f0_st": f0[sung].mean() if sung.any() else np.nan,
            "f0_slope_st_per_s": slope,
            "voiced_share": voiced[inside].mean() if inside.any() else np.nan,
            "intensity_db": np.nanmean(level) if np.isfinite(level).any() else np.nan,
            "hnr_db": np.nanmean(hnr) if np.isfinite(hnr).any() else np.nan,
            "pause_share": track["pause"].to_numpy()[inside].mean() if inside.any() else np.nan,
        })
    return pd.DataFrame(rows, columns=SEGMENT_PROSODY_COLUMNS)
