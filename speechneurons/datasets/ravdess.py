"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song.

Livingstone & Russo (2018), https://doi.org/10.1371/journal.pone.0196391,
CC BY-NC-SA 4.0. 24 professional actors (odd numbers male, even female) say
two fixed statements in eight emotions at two intensities. The audio-only
speech release has 1,440 files: 24 actors x 60 trials.

Layout: ``<root>/Actor_NN/MM-VV-EE-II-SS-RR-AA.wav`` with seven two-digit
fields in the file name:

==========  ================================================================
field       codes
==========  ================================================================
modality    01 full-AV, 02 video-only, 03 audio-only
vocal       01 speech, 02 song
emotion     01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
            07 disgust, 08 surprised
intensity   01 normal, 02 strong (neutral has no strong)
statement   01 "Kids are talking by the door", 02 "Dogs are sitting by the door"
repetition  01, 02
actor       01..24 (odd male, even female)
==========  ================================================================

Song has no disgust and no surprised. :func:`build_index` scans a folder,
checks every audio file against these rules, reads its header and decodes it
once, and returns the valid clips and the rejected files (with a reason):
one bad file never stops the scan.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from speechneurons.audio import AudioError, read_header_and_check

log = logging.getLogger(__name__)

MODALITIES = {1: "full-AV", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
REPETITIONS = (1, 2)
ACTORS = range(1, 25)

#: Files with these suffixes are candidates; anything else under the root
#: (licence notes, .DS_Store, spreadsheets) is not part of the dataset.
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
#: RAVDESS also ships video; soundfile cannot decode it, so such files are
#: rejected with a reason rather than silently skipped.
VIDEO_SUFFIXES = {".mp4"}

#: The shortest clip the index accepts by default (``dataset.min_duration_s``).
#: The wav2vec2-family convolutional front end reads 400 samples (25 ms at
#: 16 kHz) for its first frame; a clip shorter than that fails inside the
#: model, and one of a few frames says little about a unit.
MIN_DURATION_S = 0.1

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")

#: Columns of ``clips.parquet`` in order (the contract later stages read).
CLIP_COLUMNS = [
    "clip_id",
    "path",
    "modality",
    "vocal_channel",
    "emotion",
    "emotion_code",
    "intensity",
    "statement",
    "repetition",
    "actor",
    "gender",
    "sample_rate",
    "channels",
    "num_frames",
    "duration_s",
]
REJECTED_COLUMNS = ["path", "reason"]
#: The cells that ``max_per_cell`` caps.
CELL = ["emotion", "gender", "intensity"]


class RavdessNameError(ValueError):
    """A file name that is not a valid RAVDESS name; the message says why."""


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of one RAVDESS file name, decoded."""

    modality: str
    vocal_channel: str
    emotion: str
    emotion_code: int
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        return "male" if self.actor % 2 == 1 else "female"


def _decode(code: int, table: dict[int, str], what: str) -> str:
    if code not in table:
        allowed = ", ".join(f"{k:02d}" for k in table)
        raise RavdessNameError(f"{what} code {code:02d} is not one of {allowed}")
    return table[code]


def parse_name(stem: str) -> RavdessName:
    """Decode a file stem such as ``03-01-05-02-01-01-06``.

    Raises :class:`RavdessNameError` naming the offending field when the stem
    has the wrong shape, a code out of range, or a combination RAVDESS does
    not contain (strong neutral; sung disgust or surprise).
    """
    match = _NAME.match(stem)
    if match is None:
        raise RavdessNameError(
            f"name {stem!r} is not seven two-digit fields MM-VV-EE-II-SS-RR-AA"
        )
    mod, voc, emo, inten, stmt, rep, actor = (int(g) for g in match.groups())
    modality = _decode(mod, MODALITIES, "modality")
    vocal = _decode(voc, VOCAL_CHANNELS, "vocal channel")
    emotion = _decode(emo, EMOTIONS, "emotion")
    intensity = _decode(inten, INTENSITIES, "intensity")
    if stmt not in STATEMENTS:
        raise RavdessNameError(f"statement code {stmt:02d} is not one of 01, 02")
    if rep not in REPETITIONS:
        raise RavdessNameError(f"repetition code {rep:02d} is not one of 01, 02")
    if actor not in ACTORS:
        raise RavdessNameError(f"actor code {actor:02d} is not in 01..24")
    if emotion == "neutral" and intensity == "strong":
        raise RavdessNameError("neutral has no strong intensity in RAVDESS")
    if vocal == "song" and emotion in ("disgust", "surprised"):
        raise RavdessNameError(f"song has no {emotion} in RAVDESS")
    return RavdessName(
        modality=modality,
        vocal_channel=vocal,
        emotion=emotion,
        emotion_code=emo,
        intensity=intensity,
        statement=stmt,
        repetition=rep,
        actor=actor,
    )


@dataclass(frozen=True)
class IndexFilters:
    """Which valid clips enter the study (``dataset.filters`` in the config).

    ``None`` or an empty list keeps every value. ``max_per_cell`` keeps at
    most that many clips per (emotion, gender, intensity) cell, drawn with
    ``seed``.
    """

    vocal_channel: Sequence[str] | None = ("speech",)
    emotions: Sequence[str] | None = None
    actors: Sequence[int] | None = None
    gender: Sequence[str] | None = None
    intensity: Sequence[str] | None = None
    max_per_cell: int | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, section: dict | None) -> "IndexFilters":
        """Build from the ``dataset.filters`` mapping; unknown keys are an error."""
        section = dict(section or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise KeyError(
                f"dataset.filters: unknown key(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**section)

    def check(self) -> None:
        """Reject values that can never match, naming the config key."""
        checks = [
            ("vocal_channel", self.vocal_channel, set(VOCAL_CHANNELS.values())),
            ("emotions", self.emotions, set(EMOTIONS.values())),
            ("gender", self.gender, {"male", "female"}),
            ("intensity", self.intensity, set(INTENSITIES.values())),
            ("actors", self.actors, set(ACTORS)),
        ]
        for key, values, allowed in checks:
            bad = sorted(set(values or ()) - allowed, key=str)
            if bad:
                raise ValueError(
                    f"dataset.filters.{key}: {bad} not among {sorted(allowed, key=str)}"
                )
        if self.max_per_cell is not None and self.max_per_cell < 1:
            raise ValueError("dataset.filters.max_per_cell must be >= 1 or null")


class NoValidClipsError(RuntimeError):
    """Raised when a scan leaves no clip to study."""


@dataclass
class IndexResult:
    """What :func:`build_index` found: the study's clips and the rejected files."""

    clips: pd.DataFrame
    rejected: pd.DataFrame
    valid_before_filters: int = 0
    notes: list[str] = field(default_factory=list)


def _candidates(root: Path) -> list[Path]:
    suffixes = AUDIO_SUFFIXES | VIDEO_SUFFIXES
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _check_file(path: Path, root: Path) -> dict:
    """One row of ``clips`` for a valid file; raises ValueError with the reason."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise ValueError(
            f"video file ({path.suffix}): not decodable as audio; use the audio-only release"
        )
    name = parse_name(path.stem)
    folder = _ACTOR_DIR.match(path.parent.name)
    if folder is not None and int(folder.group(1)) != name.actor:
        raise RavdessNameError(
            f"folder {path.parent.name} disagrees with actor field {name.actor:02d}"
        )
    header = read_header_and_check(path)
    return {
        "clip_id": path.stem,
        "path": path.relative_to(root).as_posix(),
        "modality": name.modality,
        "vocal_channel": name.vocal_channel,
        "emotion": name.emotion,
        "emotion_code": name.emotion_code,
        "intensity": name.intensity,
        "statement": name.statement,
        "repetition": name.repetition,
        "actor": name.actor,
        "gender": name.gender,
        "sample_rate": header.sample_rate,
        "channels": header.channels,
        "num_frames": header.num_frames,
        "duration_s": header.duration_s,
    }


def scan(root: str | Path, progress: bool = True, min_duration_s: float = MIN_DURATION_S
         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every candidate file under ``root``: (valid clips, rejected files).

    A file shorter than ``min_duration_s`` seconds is rejected with that
    reason. Raises FileNotFoundError naming ``root`` when it is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset.root: {root} is not a folder")
    rows: list[dict] = []
    rejected: list[dict] = []
    seen: dict[str, str] = {}
    for path in tqdm(_candidates(root), desc="index", unit="file", disable=not progress):
        rel = path.relative_to(root).as_posix()
        try:
            row = _check_file(path, root)
        except (RavdessNameError, AudioError, ValueError) as err:
            rejected.append({"path": rel, "reason": str(err)})
            continue
        if row["duration_s"] < min_duration_s:
            rejected.append({"path": rel, "reason": (
                f"too short: {row['duration_s']:.4f} s < dataset.min_duration_s = {min_duration_s} s "
                "(the model's convolutional front end needs at least 400 samples, 25 ms)")})
            continue
        if row["clip_id"] in seen:
            rejected.append(
                {"path": rel, "reason": f"duplicate clip_id, first seen at {seen[row['clip_id']]}"}
            )
            continue
        seen[row["clip_id"]] = rel
        rows.append(row)
    clips = pd.DataFrame(rows, columns=CLIP_COLUMNS)
    clips = clips.astype(
        {
            "emotion_code": "int64",
            "statement": "int64",
            "repetition": "int64",
            "actor": "int64",
            "sample_rate": "int64",
            "channels": "int64",
            "num_frames": "int64",
            "duration_s": "float64",
        }
    )
    return clips, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def apply_filters(clips: pd.DataFrame, filters: IndexFilters) -> pd.DataFrame:
    """Keep the clips the filters select; cap cells with a seeded draw."""
    filters.check()
    keep = np.ones(len(clips), dtype=bool)
    for column, values in [
        ("vocal_channel", filters.vocal_channel),
        ("emotion", filters.emotions),
        ("actor", filters.actors),
        ("gender", filters.gender),
        ("intensity", filters.intensity),
    ]:
        if values:
            keep &= clips[column].isin(list(values)).to_numpy()
    out = clips[keep]
    if filters.max_per_cell is not None:
        order = np.random.default_rng(filters.seed).permutation(len(out))
        out = out.iloc[order].groupby(CELL, sort=False).head(filters.max_per_cell)
    return out.sort_values("clip_id").reset_index(drop=True)


def build_index(
    root: str | Path, filters: IndexFilters | None = None, progress: bool = True,
    min_duration_s: float = MIN_DURATION_S,
) -> IndexResult:
    """Scan ``root``, then filter: the study's clips and every rejected file.

    Raises :class:`NoValidClipsError` naming the folder when no clip is left.
    """
    filters = filters or IndexFilters()
    filters.check()
    clips, rejected = scan(root, progress=progress, min_duration_s=min_duration_s)
    selected = apply_filters(clips, filters)
    if selected.empty:
        why = (
            f"{len(clips)} valid clip(s) found but none passed dataset.filters"
            if len(clips)
            else f"no valid RAVDESS audio file found ({len(rejected)} rejected); expected "
            "Actor_NN/MM-VV-EE-II-SS-RR-AA.wav files such as Actor_01/03-01-05-01-01-01-01.wav"
        )
        raise NoValidClipsError(f"dataset.root {root}: {why}")
    notes = [
        f"{len(clips)} valid, {len(rejected)} rejected, "
        f"{len(selected)} selected by dataset.filters"
    ]
    return IndexResult(
        clips=selected, rejected=rejected, valid_before_filters=len(clips), notes=notes
    )


def full_design(actors: Iterable[int] = ACTORS, emotions: Iterable[str] | None = None) -> pd.DataFrame:
    """The metadata of every audio-only speech clip RAVDESS has for ``actors`` and ``emotions``.

    24 actors x 60 clips = 1,440 rows with real clip ids (neutral at normal
    intensity only). No audio: for planning, checks of completeness, and
    synthetic data of the study's shape in tests and benchmarks.
    """
    wanted = set(emotions) if emotions is not None else set(EMOTIONS.values())
    rows = []
    for actor in actors:
        for code, emotion in EMOTIONS.items():
            if emotion not in wanted:
                continue
            for intensity_code in (1,) if emotion == "neutral" else (1, 2):
                for statement in (1, 2):
                    for repetition in (1, 2):
                        rows.append({
                            "clip_id": f"03-01-{code:02d}-{intensity_code:02d}-{statement:02d}-"
                                       f"{repetition:02d}-{actor:02d}",
                            "actor": actor, "gender": "male" if actor % 2 else "female",
                            "emotion": emotion, "intensity": INTENSITIES[intensity_code],
                            "statement": statement, "repetition": repetition,
                        })
    return pd.DataFrame(rows)


def iter_reasons(rejected: pd.DataFrame) -> Iterable[str]:
    """Human-readable lines for a log: ``path: reason``."""
    for row in rejected.itertuples(index=False):
        yield f"{row.path}: {row.reason}"
