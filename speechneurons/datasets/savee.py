"""SAVEE: Surrey Audio-Visual Expressed Emotion.

Haq & Jackson (2009), http://kahlan.eps.surrey.ac.uk/savee/, free for research
(registration). Four male native English speakers (DC, JE, JK, KL) read
phonetically balanced TIMIT sentences in seven emotions: 15 sentences per
emotion, 30 for neutral; 480 clips. Download: the site above
(``AudioData/``) or the Kaggle mirror (flat ``ALL/`` folder).

Layouts: ``<root>/AudioData/DC/a01.wav`` (speaker folder, then
``<code><NN>``) or ``<root>/ALL/DC_a01.wav`` (speaker prefix). Emotion
codes: a anger, d disgust, f fear, h happiness, n neutral, sa sadness,
su surprise; NN 01..15 (01..30 for neutral).

Design (:data:`SPEC`): emotion varies within speakers; all speakers are
men, so the sex question is not asked; no graded factor. The sentence
number is an extra column (its text differs between emotions).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from speechneurons.datasets.index import by_name
from speechneurons.datasets.spec import CorpusSpec, Factor

EMOTIONS = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral",
            "sa": "sadness", "su": "surprise"}
SPEAKERS = ("DC", "JE", "JK", "KL")

SPEC = CorpusSpec(
    name="savee",
    factors=(
        Factor("emotion", tuple(EMOTIONS.values()), "within"),
        Factor("sex", ("male",), "between", "all four speakers are men"),
    ),
    target="emotion",
    group="sex",
    extra_columns=("sentence",),
)
LAYOUT = "DC_a01.wav files (or DC/a01.wav in speaker folders) such as ALL/DC_a01.wav"

_NAME = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|[adfhn])(\d{2})$")


def parse(path: Path) -> dict:
    """Speaker, emotion and sentence of one file; ValueError says what is wrong."""
    match = _NAME.match(path.stem)
    if match is None:
        raise ValueError(f"name {path.stem!r} is not SPEAKER_eNN or eNN (e: a d f h n sa su)")
    speaker, code, number = match.groups()
    speaker = speaker or path.parent.name
    if speaker not in SPEAKERS:
        raise ValueError(f"speaker {speaker!r} (from the {'name' if match.group(1) else 'folder'}) "
                         f"is not one of {', '.join(SPEAKERS)}")
    most = 30 if code == "n" else 15
    if not 1 <= int(number) <= most:
        raise ValueError(f"sentence {number} is not in 01..{most} for {EMOTIONS[code]}")
    return {"speaker": speaker, "emotion": EMOTIONS[code], "sex": "male", "sentence": int(number),
            "clip_id": f"{speaker}_{code}{number}"}


def describe(root: Path, options: dict) -> Iterator[tuple[str, dict | str]]:
    """Per audio file under ``root``: (relative path, metadata or why the name is invalid)."""
    return by_name(root, parse)
