"""SAVEE's tree: 4 speakers x 4 emotions x 2 sentences = 32 clips: DC and JE flat in ALL/, JK and KL
in their AudioData/ folders."""

from __future__ import annotations

from pathlib import Path

from corpus_trees._tones import bad_files, tone

SPEAKERS = {"DC", "JE", "JK", "KL"}
LEVELS = {"emotion": {"anger", "happiness", "neutral", "sadness"}, "sex": {"male"}}
ASKED = ("4 Sex differences", "5 Graded effects",
         "question 4 is not asked: the clips hold 1 level(s) of sex (male)")


def tree(root: Path) -> tuple[Path, int, dict[str, str]]:
    """(root, number of valid clips, rejected path -> a fragment of its reason)."""
    for s, speaker in enumerate(["DC", "JE", "JK", "KL"]):
        for e, code in enumerate(["a", "h", "n", "sa"]):
            for number in (1, 2):
                name = f"{code}{number:02d}.wav"
                path = (root / "ALL" / f"{speaker}_{name}" if speaker in ("DC", "JE")
                        else root / "AudioData" / speaker / name)
                tone(path, e, s)
    bad = {"ALL/DC_x01.wav": "is not SPEAKER_eNN",
           "ALL/ZZ_a01.wav": "speaker 'ZZ' (from the name)",
           "ALL/DC_a16.wav": "sentence 16 is not in 01..15 for anger",
           "AudioData/XX/a01.wav": "speaker 'XX' (from the folder)"}
    return root, 32, bad_files(root, bad)
