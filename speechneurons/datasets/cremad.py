"""CREMA-D: the Crowd-sourced Emotional Multimodal Actors Dataset.

Cao et al. (2014), https://doi.org/10.1109/TAFFC.2014.2336244, Open Database
License (ODbL 1.0). 91 actors (48 male, 43 female, aged 20-74, several
ethnicities) say 12 sentences in six emotions; one sentence (IEO) at three
intensities. 7,442 clips. Download: https://github.com/CheyneyComputerScience/CREMA-D
(``AudioWAV/``, Git LFS) or the Kaggle mirror.

Layout: ``<root>/[AudioWAV/]AAAA_SSS_EEE_LL.wav``, four fields:

========  =================================================================
field     codes
========  =================================================================
actor     1001..1091
sentence  IEO DFA IOM ITH ITS IWL IWW MTI TAI TIE TSI WSI
emotion   ANG anger, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad
level     LO low, MD medium, HI high, XX unspecified
========  =================================================================

Sex and age come from ``VideoDemographics.csv`` (columns ActorID, Age, Sex,
...) when it is anywhere under the root; else they are unknown (missing),
and the sex question is not asked.

Design (:data:`SPEC`): emotion, level and sentence vary within speakers,
sex between them; target emotion, group sex, graded level (LO -> HI, the
IEO sentence only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from speechneurons.datasets.index import by_name
from speechneurons.datasets.spec import CorpusSpec, Factor

SENTENCES = ("IEO", "DFA", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI", "TAI", "TIE", "TSI", "WSI")
EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
            "SAD": "sad"}
LEVELS = ("LO", "MD", "HI", "XX")
SPEAKERS = range(1001, 1092)
DEMOGRAPHICS = "VideoDemographics.csv"

SPEC = CorpusSpec(
    name="cremad",
    factors=(
        Factor("emotion", tuple(EMOTIONS.values()), "within"),
        Factor("sex", ("male", "female"), "between", f"from {DEMOGRAPHICS}; missing without it"),
        Factor("level", LEVELS, "within", "intensity; XX = unspecified"),
        Factor("sentence", SENTENCES, "within"),
    ),
    target="emotion",
    group="sex",
    graded=("level", "LO", "HI"),
    extra_columns=("age",),
)
LAYOUT = "AAAA_SSS_EEE_LL.wav files such as AudioWAV/1001_DFA_ANG_XX.wav"

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def demographics(root: Path) -> dict[int, dict]:
    """ActorID -> {sex, age} from VideoDemographics.csv under ``root`` ({} when absent)."""
    found = sorted(root.rglob(DEMOGRAPHICS))
    if not found:
        return {}
    table = pd.read_csv(found[0])
    missing = {"ActorID", "Sex", "Age"} - set(table.columns)
    if missing:
        raise ValueError(f"{found[0]}: no column(s) {sorted(missing)}; expected ActorID, Age, Sex")
    return {int(row.ActorID): {"sex": str(row.Sex).strip().lower(), "age": float(row.Age)}
            for row in table.itertuples(index=False)}


def parse_name(stem: str) -> dict:
    """The speaker, emotion, level and sentence of a stem such as ``1001_DFA_ANG_XX``.

    Raises ValueError naming the field that is wrong.
    """
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(f"name {stem!r} is not AAAA_SSS_EEE_LL (actor_sentence_emotion_level)")
    actor, sentence, emotion, level = match.groups()
    if int(actor) not in SPEAKERS:
        raise ValueError(f"actor {actor} is not in 1001..1091")
    if sentence not in SENTENCES:
        raise ValueError(f"sentence {sentence} is not one of {', '.join(SENTENCES)}")
    if emotion not in EMOTIONS:
        raise ValueError(f"emotion {emotion} is not one of {', '.join(EMOTIONS)}")
    if level not in LEVELS:
        raise ValueError(f"level {level} is not one of {', '.join(LEVELS)}")
    return {"speaker": actor, "emotion": EMOTIONS[emotion], "level": level, "sentence": sentence}


def describe(root: Path, options: dict) -> Iterator[tuple[str, dict | str]]:
    """Per audio file under ``root``: (relative path, metadata or why the name is invalid)."""
    people = demographics(root)

    def parse(path: Path) -> dict:
        row = parse_name(path.stem)
        person = people.get(int(row["speaker"]), {})
        sex = person.get("sex")
        return {**row, "sex": sex if sex in ("male", "female") else None, "age": person.get("age")}

    return by_name(root, parse)


def full_design(actors: Iterable[int] = SPEAKERS) -> pd.DataFrame:
    """The metadata of every clip CREMA-D's design has for ``actors``, without audio.

    Per actor 82 clips: 11 sentences x 6 emotions at level XX, and IEO as
    neutral XX plus five emotions at LO, MD and HI (91 actors: 7,462 rows;
    the release lacks 20 of them). Odd actors are male, even female (the
    real split is 48 / 43). For planning and synthetic data of the study's
    shape in benchmarks.
    """
    rows = []
    for actor in actors:
        for sentence in SENTENCES:
            for code, emotion in EMOTIONS.items():
                levels = ("XX",) if sentence != "IEO" or code == "NEU" else ("LO", "MD", "HI")
                for level in levels:
                    rows.append({"clip_id": f"{actor}_{sentence}_{code}_{level}", "speaker": actor,
                                 "emotion": emotion, "sex": "male" if actor % 2 else "female",
                                 "level": level, "sentence": sentence})
    return pd.DataFrame(rows)
