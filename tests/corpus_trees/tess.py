"""TESS's tree: 2 speakers x 4 emotions x 3 words = 24 clips, in the release's folders."""

from __future__ import annotations

from pathlib import Path

from corpus_trees._tones import bad_files, tone

SPEAKERS = {"OAF", "YAF"}
LEVELS = {"emotion": {"angry", "happy", "neutral", "pleasant_surprise"}, "sex": {"female"}}
ASKED = ("4 Sex differences", "5 Graded effects",
         "question 4 is not asked: the clips hold 1 level(s) of sex (female)")


def tree(root: Path) -> tuple[Path, int, dict[str, str]]:
    """(root, number of valid clips, rejected path -> a fragment of its reason)."""
    folders = {"angry": "angry", "happy": "happy", "neutral": "neutral", "ps": "pleasant_surprised"}
    for s, speaker in enumerate(["OAF", "YAF"]):
        for e, (code, folder) in enumerate(folders.items()):
            for word in ["back", "bar", "base"]:
                tone(root / f"{speaker}_{folder}" / f"{speaker}_{word}_{code}.wav", e, s)
    bad = {"OAF_angry/OAF_back_joy.wav": "emotion 'joy' is not one of",
           "OAF_angry/XYZ_back_angry.wav": "speaker XYZ is not one of",
           "OAF_angry/OAF_back.wav": "is not SPEAKER_word_emotion"}
    return root, 24, bad_files(root, bad)
