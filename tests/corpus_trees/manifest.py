"""A manifest corpus's tree: 4 talkers x 2 moods x 2 loudness x 2 takes = 32 rows of clips.tsv, plus
bad rows and files the table does not list; the file names carry nothing."""

from __future__ import annotations

from pathlib import Path

from audio_files import write_tone
from corpus_trees._tones import tone

#: dataset.manifest of this tree
OPTIONS = {
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
SPEAKERS = {"t1", "t2", "t3", "t4"}
LEVELS = {"mood": {"relaxed", "tense"}, "sex": {"f", "m"}, "loudness": {"soft", "loud"}}
ASKED = ("4 Sex differences", "5 Loudness effects", None)


def tree(root: Path) -> tuple[Path, int, dict[str, str]]:
    """(root, number of valid clips, rejected path -> a fragment of its reason)."""
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
