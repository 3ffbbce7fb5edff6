"""Small trees in each corpus's own naming scheme (numpy tones), with bad names among them.

Each builder returns the root and what the index must find: the number of
valid clips and, per rejected file, a fragment of its reason.
"""

from __future__ import annotations

from pathlib import Path

from audio_files import write_tone


def bad_files(root: Path, bad: dict[str, str]) -> dict[str, str]:
    """Write a valid tone at each of ``bad``'s paths (names the corpus must reject); returns ``bad``."""
    for name in bad:
        write_tone(root / name, seconds=0.5)
    return bad


def tone(path: Path, level: int, speaker: int) -> None:
    """A half-second tone whose pitch follows the level and the speaker (so units can differ)."""
    write_tone(path, seconds=0.5, freq=150.0 + 40 * level + 7 * speaker)


def cremad(root: Path, demographics: bool = True) -> tuple[Path, int, dict[str, str]]:
    """4 actors x (IEO: anger and happy at LO and HI, neutral XX; DFA: the three at XX) = 32 clips."""
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


def tess(root: Path) -> tuple[Path, int, dict[str, str]]:
    """2 speakers x 4 emotions x 3 words = 24 clips, in the release's folders."""
    folders = {"angry": "angry", "happy": "happy", "neutral": "neutral", "ps": "pleasant_surprised"}
    for s, speaker in enumerate(["OAF", "YAF"]):
        for e, (code, folder) in enumerate(folders.items()):
            for word in ["back", "bar", "base"]:
                tone(root / f"{speaker}_{folder}" / f"{speaker}_{word}_{code}.wav", e, s)
    bad = {"OAF_angry/OAF_back_joy.wav": "emotion 'joy' is not one of",
           "OAF_angry/XYZ_back_angry.wav": "speaker XYZ is not one of",
           "OAF_angry/OAF_back.wav": "is not SPEAKER_word_emotion"}
    return root, 24, bad_files(root, bad)


def savee(root: Path) -> tuple[Path, int, dict[str, str]]:
    """4 speakers x 4 emotions x 2 sentences = 32 clips: DC and JE flat, JK and KL in folders."""
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


def emodb(root: Path) -> tuple[Path, int, dict[str, str]]:
    """4 speakers (2 men, 2 women) x 2 texts x 3 emotions = 24 clips."""
    for s, speaker in enumerate(["03", "08", "10", "09"]):
        for text in ("a01", "a02"):
            for e, letter in enumerate("WFN"):
                tone(root / "wav" / f"{speaker}{text}{letter}a.wav", e, s)
    bad = {"wav/03a01Xa.wav": "emotion letter X is not one of",
           "wav/04a01Fa.wav": "speaker 04 is not one of",
           "wav/03c01Fa.wav": "is not SSTTTEV",
           "wav/03a03Fa.wav": "text a03 is not one of"}
    return root, 24, bad_files(root, bad)


MANIFEST = {
    "file": "clips.tsv",
    "path_column": "file",
    "speaker_column": "talker",
    "factors": {"mood": {"levels": ["relaxed", "tense"], "varies": "within"},
                "sex": {"levels": ["f", "m"], "varies": "between"},
                "loudness": {"levels": ["soft", "loud"], "varies": "within"}},
    "target": "mood",
    "group": "sex",
    "graded": {"factor": "loudness", "low": "soft", "high": "loud"},
    "extra_columns": ["session"],
}


def manifest(root: Path) -> tuple[Path, int, dict[str, str]]:
    """4 talkers x 2 moods x 2 loudness x 2 takes = 32 rows, plus 3 bad rows; names carry nothing."""
    rows = ["file\ttalker\tmood\tsex\tloudness\tsession"]
    for s, (talker, sex) in enumerate([("t1", "f"), ("t2", "m"), ("t3", "f"), ("t4", "m")]):
        for m, mood in enumerate(["relaxed", "tense"]):
            for loudness in ("soft", "loud"):
                for take in (1, 2):
                    name = f"rec/{talker}/take{m}{loudness}{take}.wav"
                    tone(root / name, 2 * m + (loudness == "loud"), s)
                    rows.append(f"{name}\t{talker}\t{mood}\t{sex}\t{loudness}\tday{take}")
    write_tone(root / "rec/extra.wav", seconds=0.5)
    write_tone(root / "rec/unlisted.wav", seconds=0.5)
    write_tone(root.parent / "outside.wav", seconds=0.5)
    rows += ["rec/missing.wav\tt1\trelaxed\tf\tsoft\tday1",
             "rec/extra.wav\tt1\tbored\tf\tsoft\tday1",
             "rec/t1/take0soft1.wav\t \trelaxed\tf\tsoft\tday1",
             "../outside.wav\tt1\trelaxed\tf\tsoft\tday1",
             f"{(root.parent / 'outside.wav').resolve()}\tt1\trelaxed\tf\tsoft\tday1"]
    (root / "clips.tsv").write_text("\n".join(rows) + "\n")
    bad = {"rec/missing.wav": "manifest line 34: no file rec/missing.wav",
           "rec/extra.wav": "manifest line 35: mood 'bored' is not a declared level (relaxed, tense)",
           "rec/t1/take0soft1.wav": "manifest line 36: no speaker in column talker",
           "../outside.wav": "manifest line 37: ../outside.wav is outside dataset.root",
           str((root.parent / "outside.wav").resolve()): "manifest line 38: ",
           "rec/unlisted.wav": "not part of corpus manifest",
           "clips.tsv": "not audio (suffix '.tsv'"}
    return root, 32, bad


TREES = {"cremad": cremad, "tess": tess, "savee": savee, "emodb": emodb, "manifest": manifest}
