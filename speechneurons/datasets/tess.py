"""TESS: the Toronto Emotional Speech Set.

Pichora-Fuller & Dupuis (2020), https://doi.org/10.5683/SP2/E8H2MF, CC BY-NC-ND
4.0. Two actresses (OAF, aged 64; YAF, aged 26) say "Say the word ___" with
200 target words in seven emotions: 2,800 clips. Download: the Borealis
dataverse above, or the Kaggle mirror.

Layout: ``<root>/<SPEAKER>_<emotion>/<SPEAKER>_<word>_<emotion>.wav`` (the
folder is not needed), three fields separated by ``_``:

=========  ================================================================
field      codes
=========  ================================================================
speaker    OAF, YAF (both female)
word       the target word (back, bar, base, ...)
emotion    angry, disgust, fear, happy, neutral, ps (pleasant surprise), sad
=========  ================================================================

The release's few names in another case (``YAF_neutral``, ``OAF_Fear``) are
read case-insensitively. Design (:data:`SPEC`): emotion varies within
speakers; sex is female for both, so the sex question is not asked; no
graded factor. The word is an extra column (200 levels, one clip per
speaker and emotion each).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from speechneurons.datasets.index import by_name
from speechneurons.datasets.spec import CorpusSpec, Factor

EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
            "neutral": "neutral", "ps": "pleasant_surprise", "sad": "sad"}
SPEAKERS = ("OAF", "YAF")

SPEC = CorpusSpec(
    name="tess",
    factors=(
        Factor("emotion", tuple(EMOTIONS.values()), "within"),
        Factor("sex", ("female",), "between", "both speakers are women"),
    ),
    target="emotion",
    group="sex",
    extra_columns=("word",),
)
LAYOUT = "SPEAKER_word_emotion.wav files such as OAF_angry/OAF_back_angry.wav"

_NAME = re.compile(r"^([A-Za-z]{3})_([A-Za-z]+)_([A-Za-z]+)$")


def parse_name(stem: str) -> dict:
    """Speaker, word and emotion of a stem such as ``OAF_back_angry``; ValueError says what is wrong."""
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(f"name {stem!r} is not SPEAKER_word_emotion")
    speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
    if speaker not in SPEAKERS:
        raise ValueError(f"speaker {speaker} is not one of {', '.join(SPEAKERS)}")
    if emotion not in EMOTIONS:
        raise ValueError(f"emotion {emotion!r} is not one of {', '.join(EMOTIONS)}")
    return {"speaker": speaker, "emotion": EMOTIONS[emotion], "sex": "female", "word": word}


def describe(root: Path, options: dict) -> Iterator[tuple[str, dict | str]]:
    """Per audio file under ``root``: (relative path, metadata or why the name is invalid)."""
    return by_name(root, lambda path: parse_name(path.stem))
