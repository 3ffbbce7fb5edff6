"""Prosody per 20 ms frame of a clip, measured with Praat: the ``prosody`` stage.

Praat (Boersma & Weenink, https://www.praat.org) is the phonetics field's
reference for these measures; ``praat-parselmouth`` (Jadoul, Thompson & de
Boer 2018, J. Phonetics 71:1-15) runs Praat's own code from Python. Per
frame of the model's grid (frame j spans [j, j + 1) x :data:`FRAME_S`, the hop of
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
- ``hnr_db``: harmonics-to-noise ratio, Boersma's (1993) 10 log10(r / (1 -
  r)) of the normalised autocorrelation peak r of the pitch candidate
  Praat chose: the F0 analysis's own periodicity, at no extra cost (Praat's
  ``To Harmonicity (ac)...`` computes the same quantity from a second,
  4.5-period Gaussian-window analysis: 119 ms for a 3.5 s clip here, the
  whole track 11 ms; ``(cc)``, a 1-period window, 58 ms). Tested: within 0.5 dB of the true
  ratio of a harmonic voice in white noise from 5 to 30 dB, and of both of
  Praat's harmonicity commands (at 0 dB all three read 0.7-1 dB high: the
  voicing decision keeps the clearer frames). NaN where unvoiced.
- ``pause``: unvoiced and more than ``silence_db`` below the clip's loudest
  frame (Praat's silence threshold of -25 dB by default).
- ``accent``: the frame is a pitch accent, a local F0 maximum at least
  ``accent_st`` semitones prominent (:func:`pitch_accents`).

Per clip, :func:`clip_events` finds the voicing onset and offset (first and
last voiced frame) and the pitch accents (local F0 maxima); per ablation
segment, :func:`segment_prosody` summarises the frames. The stage
(:func:`prosody_tracks`, ``scripts/prosody.py``) depends on the audio only,
not on a model: one table per shard of the corpus, shared by every model.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
from scipy.signal import find_peaks
from tqdm import tqdm

from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.failures import ClipFailures
from speechneurons.schemas import empty_table
from speechneurons.settings import FromConfig
from speechneurons.integrity import read_parquet

log = logging.getLogger(__name__)

#: Columns and dtypes of a clip's prosody track.
PROSODY_SCHEMA = {
    "frame": "int32", "start_s": "float64", "end_s": "float64", "f0_hz": "float64", "voiced": "bool",
    "intensity_db": "float64", "hnr_db": "float64", "pause": "bool", "accent": "bool",
}
#: The frame grid of the track: the 20 ms hop of every supported model family
FRAME_S = 0.02


@dataclass(frozen=True)
class ProsodySettings(FromConfig):
    """Praat's analysis settings: the ``prosody`` section of the config.

    ``pitch_range`` maps a level of the corpus's between-speaker group factor
    (its sex, in every bundled corpus) to that group's [floor, ceiling] in Hz,
    e.g. ``{female: [100, 500], male: [75, 300]}`` (the Praat manual's advice);
    a speaker of a level not named there, or of a corpus without a group
    factor, gets ``pitch_floor`` and ``pitch_ceiling``. ``accent_st``: how far
    (semitones) a local F0 maximum must rise above its surroundings (its
    prominence) to count as a pitch accent.
    """

    SECTION: ClassVar[str] = "prosody"

    pitch_floor: float = 75.0
    pitch_ceiling: float = 600.0
    pitch_range: Mapping[str, Any] = field(default_factory=dict)
    silence_db: float = 25.0
    accent_st: float = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.pitch_floor < self.pitch_ceiling:
            raise ValueError(f"prosody: pitch_floor ({self.pitch_floor:g} Hz) must be above 0 and below "
                             f"pitch_ceiling ({self.pitch_ceiling:g} Hz)")
        for level, bounds in self.pitch_range.items():
            if len(bounds) != 2 or not 0 < bounds[0] < bounds[1]:
                raise ValueError(f"prosody.pitch_range.{level}: {list(bounds)}; give [floor, ceiling] in Hz "
                                 "with 0 < floor < ceiling")
        if self.accent_st <= 0:
            raise ValueError(f"prosody.accent_st: {self.accent_st:g} semitones; give a positive prominence")

    def pitch_bounds(self, group_level: Any = None) -> tuple[float, float]:
        """(floor, ceiling) in Hz for a speaker of ``group_level`` (None: the defaults)."""
        bounds = self.pitch_range.get(str(group_level)) if group_level is not None else None
        return (float(bounds[0]), float(bounds[1])) if bounds else (self.pitch_floor, self.pitch_ceiling)


def pitch_range_errors(settings: ProsodySettings, group: str | None, levels: list) -> list[str]:
    """Config errors of ``prosody.pitch_range`` for a corpus whose group factor is ``group``
    (None: it has none) with ``levels``, in the config's words (checked before the first job)."""
    if settings.pitch_range and group is None:
        return ["prosody.pitch_range: this corpus has no between-speaker group factor to give ranges by; "
                "set prosody.pitch_floor and prosody.pitch_ceiling instead"]
    known = [str(level) for level in levels]
    return [f"prosody.pitch_range.{key}: not a level of {group} (its levels: {', '.join(known)})"
            for key in settings.pitch_range if str(key) not in known]


def prosody_track(wave: np.ndarray, sample_rate: int, settings: ProsodySettings = ProsodySettings(),
                  group_level: Any = None) -> pd.DataFrame:
    """One row per frame of ``wave`` ([samples], float): :data:`PROSODY_SCHEMA`.

    Praat's analyses run at half the hop and are read at each frame's centre;
    a frame whose centre lies outside an analysis (the clip's first and last
    few tens of ms, where Praat's window does not fit) has NaN there. The
    pitch range is the speaker's group's (:meth:`ProsodySettings.pitch_bounds`).
    """
    import parselmouth

    floor, ceiling = settings.pitch_bounds(group_level)
    if len(wave) / sample_rate < 6.4 / floor:
        raise ValueError(f"Praat cannot analyse {len(wave) / sample_rate:g} s of audio with a pitch floor of "
                         f"{floor:g} Hz: its intensity window needs 6.4 periods of the floor, {6.4 / floor:.3g} s "
                         "(raise prosody.pitch_floor, or dataset.min_duration_s to reject such clips)")
    sound = parselmouth.Sound(np.asarray(wave, dtype=np.float64), sampling_frequency=float(sample_rate))
    frames = max(1, math.ceil(len(wave) / (FRAME_S * sample_rate) - 1e-9))
    centres = (np.arange(frames) + 0.5) * FRAME_S
    step = FRAME_S / 2
    pitch = sound.to_pitch_ac(time_step=step, pitch_floor=floor, pitch_ceiling=ceiling)
    f0 = np.array([pitch.get_value_at_time(t) for t in centres], dtype=np.float64)
    intensity = _sampled(sound.to_intensity(minimum_pitch=floor, time_step=step), centres)
    voiced = np.isfinite(f0)
    hnr = np.where(voiced, _harmonicity(pitch, centres), np.nan)
    loudest = np.nanmax(intensity) if np.isfinite(intensity).any() else np.nan
    with np.errstate(invalid="ignore"):
        quiet = ~(intensity >= loudest - settings.silence_db)  # NaN (no analysis) counts as quiet
    return pd.DataFrame({
        "frame": np.arange(frames, dtype=np.int32),
        "start_s": np.arange(frames) * FRAME_S,
        "end_s": np.minimum((np.arange(frames) + 1) * FRAME_S, len(wave) / sample_rate),
        "f0_hz": f0, "voiced": voiced, "intensity_db": intensity, "hnr_db": hnr,
        "pause": quiet & ~voiced, "accent": pitch_accents(f0, voiced, settings.accent_st),
    })


def _harmonicity(pitch, times: np.ndarray) -> np.ndarray:
    """[times] HNR (dB) of a Praat Pitch's chosen candidates, 10 log10(r / (1 - r)) (Boersma 1993),
    linearly interpolated between the two analysis frames around each time where both are voiced,
    else the voiced one's (NaN where neither is)."""
    chosen = pitch.selected_array
    frame_times = np.asarray(pitch.xs(), dtype=np.float64)
    r = np.clip(chosen["strength"].astype(np.float64), 1e-15, 1 - 1e-15)  # Praat's own limits (+-150 dB)
    frame_hnr = np.where(chosen["frequency"] > 0, 10 * np.log10(r / (1 - r)), np.nan)
    after = np.clip(np.searchsorted(frame_times, times), 1, len(frame_times) - 1)
    before = after - 1
    weight = np.clip((times - frame_times[before]) / (frame_times[after] - frame_times[before]), 0, 1)
    low, high = frame_hnr[before], frame_hnr[after]
    both = low + weight * (high - low)
    return np.where(np.isfinite(both), both, np.where(np.isfinite(low), low, high))


def _sampled(analysis, times: np.ndarray) -> np.ndarray:
    """A Praat time series (Intensity, Harmonicity) read at ``times`` (Praat's own interpolation;
    NaN outside its frames)."""
    values = [analysis.get_value(t) for t in times]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


#: Columns of :func:`segment_prosody`.
SEGMENT_PROSODY_COLUMNS = ["f0_st", "f0_slope_st_per_s", "voiced_share", "intensity_db", "hnr_db", "pause_share"]
#: The measures a unit's attribution is tested against (:mod:`speechneurons.unit_prosody`), in table order.
MEASURES = list(SEGMENT_PROSODY_COLUMNS)
#: Names of the measures in figures and sentences.
MEASURE_LABELS = {
    "f0_st": "F0 (semitones re speaker)", "f0_slope_st_per_s": "F0 slope", "voiced_share": "the voiced share",
    "intensity_db": "intensity (dB)", "hnr_db": "harmonics-to-noise ratio", "pause_share": "the pause share",
}


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


#: Columns of the stage's table: a clip's id, its speaker, then its track (:data:`PROSODY_SCHEMA`).
TRACKS_SCHEMA = {"clip_id": "str", "speaker": "str", **PROSODY_SCHEMA}


def prosody_tracks(clips: pd.DataFrame, dataset_root: str | Path, settings: ProsodySettings,
                   group: str | None = None, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prosody track of every clip of ``clips`` (clip_id, speaker, path and, with ``group``,
    the between-speaker group factor that picks the pitch range): (:data:`TRACKS_SCHEMA` rows,
    failed clips). A clip that cannot be read or analysed is a failed row naming its file and the
    error; the others go on (:class:`~speechneurons.failures.ClipFailures`)."""
    parts = []
    failures = ClipFailures("prosody")

    def one_clip(clip) -> None:
        wave = load_waveform(Path(dataset_root) / clip.path, MODEL_SAMPLE_RATE)
        track = prosody_track(wave, MODEL_SAMPLE_RATE, settings, getattr(clip, group) if group else None)
        parts.append(track.assign(clip_id=str(clip.clip_id), speaker=str(clip.speaker)))
        log.info("%s: %d frames, %.0f %% voiced", clip.clip_id, len(track), 100 * track["voiced"].mean())

    for clip in tqdm(clips.itertuples(index=False), total=len(clips), desc="prosody", unit="clip",
                     disable=not progress):
        failures.attempt(clip.clip_id, clip.path, lambda: one_clip(clip))
    failures.check(len(clips))
    columns = list(TRACKS_SCHEMA)
    tracks = (pd.concat(parts, ignore_index=True)[columns] if parts
              else empty_table(TRACKS_SCHEMA))
    return tracks.astype(TRACKS_SCHEMA), failures.table()


@dataclass(frozen=True)
class ClipEvents:
    """Where a clip's voice starts and stops, and its pitch accents (seconds; NaN / empty if none)."""

    voicing_onset_s: float
    voicing_offset_s: float
    accents_s: np.ndarray  # [accents] centre of each accent's frame


def pitch_accents(f0_hz: np.ndarray, voiced: np.ndarray, accent_st: float) -> np.ndarray:
    """[frames] True at a pitch accent: a local maximum of F0 (semitones, within a run of voiced
    frames) whose prominence is at least ``accent_st``.

    The prominence is how far the peak rises above the higher of the lowest
    points on either side before a higher peak or the run's edge (scipy's
    ``find_peaks``). An acoustic proxy, not a ToBI label: it finds F0 peaks
    whatever their linguistic role, and an octave jump can fake one.
    """
    f0 = semitones(f0_hz, 100.0)
    accent = np.zeros(len(f0), dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for first, stop in zip(edges[::2], edges[1::2]):  # each run of voiced frames [first, stop)
        peaks, _ = find_peaks(f0[first:stop], prominence=accent_st)
        accent[first + peaks] = True
    return accent


def clip_events(track: pd.DataFrame) -> ClipEvents:
    """Voicing onset (start of the first voiced frame), offset (end of the last) and the centres of
    the pitch accents of a clip's ``track``."""
    voiced = track["voiced"].to_numpy(bool)
    if not voiced.any():
        return ClipEvents(np.nan, np.nan, np.array([]))
    starts, ends = track["start_s"].to_numpy(float), track["end_s"].to_numpy(float)
    centres = (starts + ends) / 2
    return ClipEvents(float(starts[voiced][0]), float(ends[voiced][-1]),
                      centres[track["accent"].to_numpy(bool)])


class ProsodyTracks:
    """Every clip's track (the stage's tables), by clip: its events, and its summaries per segment
    relative to its speaker's median F0 (:func:`speaker_reference_hz`, over all the speaker's clips).
    """

    def __init__(self, tracks: pd.DataFrame):
        self.reference_hz = speaker_reference_hz(tracks)
        self._by_clip = {str(c): t.sort_values("frame").reset_index(drop=True)
                         for c, t in tracks.groupby("clip_id", sort=False)}

    @classmethod
    def empty(cls) -> "ProsodyTracks":
        """No clip has a track (a test of what does not need one)."""
        return cls(empty_table(TRACKS_SCHEMA))

    @classmethod
    def read(cls, paths) -> "ProsodyTracks":
        """The tracks of the stage's shard tables ``paths``."""
        return cls(pd.concat([read_parquet(p) for p in paths], ignore_index=True))

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._by_clip

    def track(self, clip_id: str) -> pd.DataFrame:
        return self._by_clip[clip_id]

    def events(self, clip_id: str) -> ClipEvents | None:
        """:func:`clip_events` of the clip (None: it has no track)."""
        return clip_events(self._by_clip[clip_id]) if clip_id in self else None

    def segments(self, clip_id: str, segments: pd.DataFrame) -> pd.DataFrame | None:
        """:func:`segment_prosody` of the clip's ``segments`` (start_s, end_s; None: no track)."""
        if clip_id not in self:
            return None
        track = self._by_clip[clip_id]
        return segment_prosody(track, segments["start_s"].to_numpy(float), segments["end_s"].to_numpy(float),
                               float(self.reference_hz.get(track["speaker"].iloc[0], np.nan)))
