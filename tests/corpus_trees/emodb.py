"""EmoDB's tree: 4 speakers (2 men, 2 women) x 2 texts x 3 emotions = 24 clips in wav/."""

from __future__ import annotations

from pathlib import Path

from corpus_trees._tones import bad_files, tone

SPEAKERS = {"03", "08", "09", "10"}
LEVELS = {"emotion": {"anger", "happiness", "neutral"}, "sex": {"male", "female"}, "text": {"a01", "a02"}}
ASKED = ("4 Sex differences", "5 Graded effects", "question 5 is not asked: corpus emodb has no graded factor")


def tree(root: Path) -> tuple[Path, int, dict[str, str]]:
    """(root, number of valid clips, rejected path -> a fragment of its reason)."""
    for s, speaker in enumerate(["03", "08", "10", "09"]):
        for text in ("a01", "a02"):
            for e, letter in enumerate("WFN"):
                tone(root / "wav" / f"{speaker}{text}{letter}a.wav", e, s)
    bad = {"wav/03a01Xa.wav": "emotion letter X is not one of",
           "wav/04a01Fa.wav": "speaker 04 is not one of",
           "wav/03c01Fa.wav": "is not SSTTTEV",
           "wav/03a03Fa.wav": "text a03 is not one of"}
    return root, 24, bad_files(root, bad)
