"""EmoDB: the Berlin Database of Emotional Speech.

Burkhardt et al. (2005), Interspeech, http://emodb.bilderbar.info/, free for
research. Ten actors (five women, five men) say ten German sentences in seven
emotions; 535 clips in the public release. Download: the site above
(``download/download.zip``, folder ``wav/``).

Layout: ``<root>/wav/SSTTTEV.wav``, e.g. ``03a01Fa.wav``:

=========  ================================================================
field      codes
=========  ================================================================
SS         speaker 03 08 09 10 11 12 13 14 15 16
TTT        text a01 a02 a04 a05 a07 b01 b02 b03 b09 b10
E          W anger (Wut), L boredom (Langeweile), E disgust (Ekel), A fear
           (Angst), F happiness (Freude), T sadness (Trauer), N neutral
V          version a, b, c, ... (takes of the same utterance)
=========  ================================================================

Sex by speaker: male 03 10 11 12 15, female 08 09 13 14 16. Design
(:data:`SPEC`): emotion and text vary within speakers, sex between them; no
graded factor. The version is an extra column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from speechneurons.datasets.index import by_name
from speechneurons.datasets.spec import CorpusSpec, Factor

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
            "T": "sadness", "N": "neutral"}
SEX = {"03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
       "08": "female", "09": "female", "13": "female", "14": "female", "16": "female"}
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")

SPEC = CorpusSpec(
    name="emodb",
    factors=(
        Factor("emotion", tuple(EMOTIONS.values()), "within"),
        Factor("sex", ("male", "female"), "between"),
        Factor("text", TEXTS, "within"),
    ),
    target="emotion",
    group="sex",
    extra_columns=("version",),
)
LAYOUT = "SSTTTEV.wav files such as wav/03a01Fa.wav"

_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def parse_name(stem: str) -> dict:
    """Speaker, text, emotion and version of a stem such as ``03a01Fa``; ValueError says what is wrong."""
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(f"name {stem!r} is not SSTTTEV (speaker, text, emotion letter, version)")
    speaker, text, emotion, version = match.groups()
    if speaker not in SEX:
        raise ValueError(f"speaker {speaker} is not one of {', '.join(sorted(SEX))}")
    if text not in TEXTS:
        raise ValueError(f"text {text} is not one of {', '.join(TEXTS)}")
    if emotion not in EMOTIONS:
        raise ValueError(f"emotion letter {emotion} is not one of {' '.join(EMOTIONS)}")
    return {"speaker": speaker, "emotion": EMOTIONS[emotion], "sex": SEX[speaker], "text": text,
            "version": version}


def describe(root: Path, options: dict) -> Iterator[tuple[str, dict | str]]:
    """Per audio file under ``root``: (relative path, metadata or why the name is invalid)."""
    return by_name(root, lambda path: parse_name(path.stem))
