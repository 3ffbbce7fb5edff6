"""CREMA-D's tree: 4 actors x (IEO: anger and happy at LO and HI, neutral XX; DFA: the three at XX)
= 32 clips, with VideoDemographics.csv beside the audio."""

from __future__ import annotations

from pathlib import Path

from corpus_trees._tones import bad_files, tone

#: the index must find these speakers and, per factor, these levels
SPEAKERS = {"1001", "1002", "1003", "1004"}
LEVELS = {"emotion": {"anger", "happy", "neutral"}, "sex": {"male", "female"},
          "level": {"LO", "HI", "XX"}, "sentence": {"IEO", "DFA"}}
#: the whole DAG: report categories of questions 4 and 5, and what the problems page must say
ASKED = ("4 Sex differences", "5 Level effects", None)


def tree(root: Path, demographics: bool = True) -> tuple[Path, int, dict[str, str]]:
    """(root, number of valid clips, rejected path -> a fragment of its reason)."""
    speakers = {1001: "Male", 1002: "Female", 1003: "Male", 1004: "Female"}
    for s, speaker in enumerate(speakers):
        for e, emotion in enumerate(["ANG", "HAP", "NEU"]):
            levels = ["XX"] if emotion == "NEU" else ["LO", "HI"]
            for level in levels:
                tone(root / "AudioWAV" / f"{speaker}_IEO_{emotion}_{level}.wav", e + (level == "HI"), s)
            tone(root / "AudioWAV" / f"{speaker}_DFA_{emotion}_XX.wav", e, s)
    if demographics:
        lines = ["ActorID,Age,Sex,Race,Ethnicity"] + [
            f"{a},{30 + i},{sex},Caucasian,Not Hispanic" for i, (a, sex) in enumerate(speakers.items())]
        (root / "VideoDemographics.csv").write_text("\n".join(lines) + "\n")
    bad = {"AudioWAV/1001_DFA_ANG.wav": "is not AAAA_SSS_EEE_LL",
           "AudioWAV/0999_DFA_ANG_XX.wav": "actor 0999 is not in 1001..1091",
           "AudioWAV/1001_XYZ_ANG_XX.wav": "sentence XYZ is not one of",
           "AudioWAV/1001_DFA_JOY_XX.wav": "emotion JOY is not one of",
           "AudioWAV/1001_DFA_ANG_ZZ.wav": "level ZZ is not one of"}
    bad_files(root, bad)
    if demographics:  # every entry under the root is a clip or a rejected row, metadata too
        bad["VideoDemographics.csv"] = "not audio (suffix '.csv'"
    return root, 32, bad
