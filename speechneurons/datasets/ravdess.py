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

Song has no disgust and no surprised. Download: https://zenodo.org/records/1188976
(``Audio_Speech_Actors_01-24.zip``). :func:`describe` checks every name
against these rules; :mod:`speechneurons.datasets.index` does the rest.

Design (:data:`SPEC`): speaker = actor; emotion, intensity and statement
vary within actors, gender between them. Target emotion, group gender,
graded intensity (normal -> strong). The clips table keeps ``actor`` (equal
to ``speaker``), ``modality``, ``vocal_channel``, ``emotion_code`` and
``repetition``; the filter keys ``emotions`` and ``actors`` stay aliases of
``emotion`` and ``speakers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from speechneurons.datasets.index import AUDIO_SUFFIXES, by_name, clip_columns
from speechneurons.datasets.spec import CorpusSpec, Factor

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

#: RAVDESS also ships video; soundfile cannot decode it, so such files are
#: rejected with a reason rather than silently skipped.
VIDEO_SUFFIXES = {".mp4"}

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
#: a RAVDESS name with something around it (``03-01-05-02-01-01-06_audio``, a copy's suffix)
_NAME_PREFIX = re.compile(r"(?<!\d-)(?<!\d)\d{2}(?:-\d{2}){6}(?!-?\d)")
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")

SPEC = CorpusSpec(
    name="ravdess",
    factors=(
        Factor("emotion", tuple(EMOTIONS.values()), "within"),
        Factor("gender", ("male", "female"), "between", "odd actors male, even female"),
        Factor("intensity", tuple(INTENSITIES.values()), "within"),
        Factor("statement", tuple(STATEMENTS), "within", "1 Kids are talking..., 2 Dogs are sitting..."),
    ),
    target="emotion",
    group="gender",
    graded=("intensity", "normal", "strong"),
    filter_aliases={"emotions": "emotion", "actors": "speaker"},
    filterable={"vocal_channel": tuple(VOCAL_CHANNELS.values())},
    default_filters={"vocal_channel": ["speech"]},
    extra_columns=("actor", "modality", "vocal_channel", "emotion_code", "repetition"),
)
LAYOUT = ("Actor_NN/MM-VV-EE-II-SS-RR-AA.wav files such as Actor_01/03-01-05-01-01-01-01.wav "
          "(the audio-only speech release)")
#: Columns of ``clips.parquet`` for RAVDESS, in order.
CLIP_COLUMNS = clip_columns(SPEC)


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
        prefix = _NAME_PREFIX.search(stem)
        hint = (f"rename it to {prefix.group(0)} (RAVDESS names hold nothing else)" if prefix else
                "rename the files to RAVDESS's names")
        raise RavdessNameError(
            f"name {stem!r} is not seven two-digit fields MM-VV-EE-II-SS-RR-AA: {hint}, or describe "
            "them in a table with dataset.name: manifest (docs/corpora.md)"
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


def _metadata(path: Path) -> dict:
    """The clips row of one file name (raises RavdessNameError with the reason)."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise RavdessNameError(
            f"video file ({path.suffix}): not decodable as audio; use the audio-only release"
        )
    name = parse_name(path.stem)
    folder = _ACTOR_DIR.match(path.parent.name)
    if folder is not None and int(folder.group(1)) != name.actor:
        raise RavdessNameError(
            f"folder {path.parent.name} disagrees with actor field {name.actor:02d}"
        )
    return {
        "speaker": name.actor,
        "emotion": name.emotion,
        "gender": name.gender,
        "intensity": name.intensity,
        "statement": name.statement,
        "actor": name.actor,
        "modality": name.modality,
        "vocal_channel": name.vocal_channel,
        "emotion_code": name.emotion_code,
        "repetition": name.repetition,
    }


def describe(root: Path, options: dict) -> Iterator[tuple[str, dict | str]]:
    """Per audio or video file under ``root``: (relative path, metadata or why the name is invalid)."""
    return by_name(root, _metadata, AUDIO_SUFFIXES | VIDEO_SUFFIXES)


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
                            "speaker": actor, "actor": actor,
                            "gender": "male" if actor % 2 else "female",
                            "emotion": emotion, "intensity": INTENSITIES[intensity_code],
                            "statement": statement, "repetition": repetition,
                        })
    return pd.DataFrame(rows)
