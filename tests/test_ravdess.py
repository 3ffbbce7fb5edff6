"""The RAVDESS index: exact metadata of the real clips, and every way a file can be bad."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_files import write_tone
from speechneurons.datasets import load_corpus
from speechneurons.datasets.index import IndexFilters, NoValidClipsError, apply_filters
from speechneurons.datasets.index import build_index as build_any_index
from speechneurons.datasets.index import scan as scan_any
from speechneurons.datasets.ravdess import CLIP_COLUMNS, SPEC, RavdessNameError, full_design, parse_name

RAVDESS = load_corpus("ravdess")


def scan(root, **kwargs):
    return scan_any(RAVDESS, root, **kwargs)


def build_index(root, filters=None, **kwargs):
    return build_any_index(RAVDESS, root, filters, **kwargs)


def filters(**section) -> IndexFilters:
    return IndexFilters.from_config(section, SPEC)

# The table of data/ravdess-mini/README.md, plus header facts read by hand
# (soxi/soundfile): all 48 kHz mono.
EXPECTED = [
    # clip_id, emotion, intensity, statement, actor, gender, num_frames
    ("03-01-01-01-01-01-01", "neutral", "normal", 1, 1, "male", 158558),
    ("03-01-01-01-02-01-12", "neutral", "normal", 2, 12, "female", 172973),
    ("03-01-03-01-01-01-01", "happy", "normal", 1, 1, "male", 166567),
    ("03-01-03-02-02-01-12", "happy", "strong", 2, 12, "female", 187388),
    ("03-01-04-01-02-01-03", "sad", "normal", 2, 3, "male", 171371),
    ("03-01-04-02-01-01-04", "sad", "strong", 1, 4, "female", 176176),
    ("03-01-05-01-01-01-05", "angry", "normal", 1, 5, "male", 185786),
    ("03-01-05-02-01-01-06", "angry", "strong", 1, 6, "female", 196997),
]


def test_real_clips_index_exactly(demo_root):
    clips, rejected = scan(demo_root, progress=False)
    assert list(clips.columns) == CLIP_COLUMNS
    # every entry under the root is a clip or a rejected row: the folder's README too
    assert rejected.values.tolist() == [["README.md", "not audio (suffix '.md'; audio is .aif, .aiff, "
                                                      ".flac, .ogg, .wav)"]]
    assert len(clips) == 8 and (clips["audio_flags"] == "").all()
    got = clips.sort_values("clip_id")
    for row, (clip_id, emotion, intensity, statement, actor, gender, frames) in zip(
        got.itertuples(index=False), EXPECTED
    ):
        assert row.clip_id == clip_id
        assert row.path == f"Actor_{actor:02d}/{clip_id}.wav"
        assert (row.modality, row.vocal_channel, row.repetition) == ("audio-only", "speech", 1)
        assert (row.emotion, row.intensity, row.statement) == (emotion, intensity, statement)
        assert (row.actor, row.speaker, row.gender) == (actor, actor, gender)
        assert row.emotion_code == int(clip_id.split("-")[2])
        assert (row.sample_rate, row.channels, row.num_frames) == (48_000, 1, frames)
        assert row.duration_s == pytest.approx(frames / 48_000)
    # 3.3 to 4.1 s, as the data README says
    assert clips["duration_s"].between(3.3, 4.11).all()


@pytest.mark.parametrize(
    "stem, fragment",
    [
        ("03-01-05-02-01-01", "seven two-digit fields"),
        ("03-01-05-02-01-01-06-01", "seven two-digit fields"),
        ("a3-01-05-02-01-01-06", "seven two-digit fields"),
        ("04-01-05-02-01-01-06", "modality code 04"),
        ("03-03-05-02-01-01-06", "vocal channel code 03"),
        ("03-01-09-02-01-01-06", "emotion code 09"),
        ("03-01-00-02-01-01-06", "emotion code 00"),
        ("03-01-05-03-01-01-06", "intensity code 03"),
        ("03-01-05-02-03-01-06", "statement code 03"),
        ("03-01-05-02-01-03-06", "repetition code 03"),
        ("03-01-05-02-01-01-25", "actor code 25"),
        ("03-01-05-02-01-01-00", "actor code 00"),
        ("03-01-01-02-01-01-06", "neutral has no strong"),
        ("03-02-07-01-01-01-06", "song has no disgust"),
        ("03-02-08-01-01-01-06", "song has no surprised"),
    ],
)
def test_invalid_names_say_why(stem, fragment):
    with pytest.raises(RavdessNameError, match=fragment):
        parse_name(stem)


@pytest.mark.parametrize("stem, hint", [
    ("03-01-05-02-01-01-06_audio", "rename it to 03-01-05-02-01-01-06 (RAVDESS names hold nothing else)"),
    ("copy of 03-01-05-02-01-01-06", "rename it to 03-01-05-02-01-01-06"),
    ("03-01-05-02-01-01-06-01", "rename the files to RAVDESS's names"),
    ("recording_final", "rename the files to RAVDESS's names"),
])
def test_a_misnamed_copy_is_told_how_to_rename_or_use_the_manifest_corpus(stem, hint):
    with pytest.raises(RavdessNameError) as error:
        parse_name(stem)
    assert hint in str(error.value) and "dataset.name: manifest (docs/corpora.md)" in str(error.value)


def test_valid_name_decodes_every_field():
    name = parse_name("01-02-06-02-02-02-23")
    assert name.modality == "full-AV"
    assert name.vocal_channel == "song"
    assert (name.emotion, name.emotion_code) == ("fearful", 6)
    assert (name.intensity, name.statement, name.repetition) == ("strong", 2, 2)
    assert (name.actor, name.gender) == (23, "male")


@pytest.fixture
def messy_root(tmp_path, demo_root) -> Path:
    """The real clips plus one file for each way a file can be bad."""
    root = tmp_path / "ravdess"
    shutil.copytree(demo_root, root)
    # misnamed
    write_tone(root / "Actor_01" / "recording_final.wav")
    # invalid code (emotion 09)
    write_tone(root / "Actor_01" / "03-01-09-01-01-01-01.wav")
    # a combination RAVDESS does not have
    write_tone(root / "Actor_02" / "03-01-01-02-01-01-02.wav")
    # actor field disagrees with its folder
    write_tone(root / "Actor_02" / "03-01-03-01-01-01-04.wav")
    # corrupt: a RIFF header followed by garbage
    (root / "Actor_02" / "03-01-03-01-01-02-02.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    # empty data chunk
    write_tone(root / "Actor_02" / "03-01-03-01-02-02-02.wav", seconds=0.0)
    # a duplicate clip id in another folder
    shutil.copy(root / "Actor_01" / "03-01-01-01-01-01-01.wav", root / "03-01-01-01-01-01-01.wav")
    # video: not decodable audio
    (root / "Actor_02" / "01-01-03-01-01-01-02.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    # 200 samples (12.5 ms): a valid name, but shorter than the model's front end can read
    write_tone(root / "Actor_03" / "03-01-05-01-01-02-03.wav", seconds=200 / 16_000)
    # a valid synthetic clip at an odd rate and two channels: accepted
    write_tone(root / "Actor_02" / "03-01-06-01-01-01-02.wav", seconds=1.5, rate=22_050, channels=2)
    # not a candidate at all
    (root / "notes.txt").write_text("not audio")
    return root


def test_bad_files_are_rejected_with_reasons_and_the_scan_goes_on(messy_root):
    clips, rejected = scan(messy_root, progress=False)
    assert len(clips) == 9  # 8 real + the odd-rate stereo tone
    odd = clips.set_index("clip_id").loc["03-01-06-01-01-01-02"]
    assert (odd.sample_rate, odd.channels, odd.num_frames) == (22_050, 2, 33_075)
    assert odd.gender == "female" and odd.emotion == "fearful"
    reasons = dict(zip(rejected["path"], rejected["reason"]))
    assert len(reasons) == 11, reasons  # 9 bad audio files, notes.txt and the folder's README.md
    assert reasons["notes.txt"].startswith("not audio (suffix '.txt'")
    assert reasons["Actor_03/03-01-05-01-01-02-03.wav"].startswith(
        "too short: 0.0125 s < dataset.min_duration_s = 0.1 s")
    assert "seven two-digit fields" in reasons["Actor_01/recording_final.wav"]
    assert "emotion code 09" in reasons["Actor_01/03-01-09-01-01-01-01.wav"]
    assert "neutral has no strong" in reasons["Actor_02/03-01-01-02-01-01-02.wav"]
    assert "folder Actor_02 disagrees with actor field 04" in reasons["Actor_02/03-01-03-01-01-01-04.wav"]
    assert "cannot decode" in reasons["Actor_02/03-01-03-01-01-02-02.wav"]
    assert "no audio samples" in reasons["Actor_02/03-01-03-01-02-02-02.wav"]
    assert "video file" in reasons["Actor_02/01-01-03-01-01-01-02.mp4"]
    # files are visited in sorted path order: the copy at the root comes first
    assert "duplicate clip_id, first seen at 03-01-01-01-01-01-01.wav" in reasons[
        "Actor_01/03-01-01-01-01-01-01.wav"
    ]
    # the minimum is configurable: at 0 the short clip is a clip
    clips, rejected = scan(messy_root, progress=False, min_duration_s=0.0)
    assert "03-01-05-01-01-02-03" in set(clips["clip_id"]) and len(rejected) == 10


def test_odd_entries_are_rejected_and_suspect_audio_is_flagged(tmp_path):
    """Every entry under the root ends up a clip or a rejected row; audio that decodes but may
    mislead is kept with a flag."""
    root = tmp_path / "ravdess"
    actor = root / "Actor_01"
    whole = write_tone(actor / "03-01-01-01-01-01-01.wav", seconds=1.0)
    cut = actor / "03-01-01-01-01-02-01.wav"  # half its bytes: libsndfile reads a shorter clip
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    os.mkfifo(actor / "03-01-01-01-02-01-01.wav")
    (actor / "03-01-01-01-02-02-01.wav").symlink_to(actor / "gone.wav")  # dangling
    (actor / "03-01-03-01-01-01-01.wav").symlink_to(actor / "03-01-03-01-01-01-01.wav")  # loops
    (actor / "loop").symlink_to(actor)  # a folder link back up: scanned once
    (actor / "03-01-03-01-01-02-01.wav").mkdir()  # a folder named like audio
    write_tone(actor / "03-01-03-01-02-01-01.wav", seconds=2.0)  # over max_duration_s below
    (actor / "03-01-04-01-01-01-01.wav").symlink_to(whole)  # a link to a clip: read as a clip,
    # here a duplicate of nothing (its own clip id)
    t = np.arange(16_000) / 16_000
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(actor / "03-01-04-01-01-02-01.wav", tone + 0.5, 16_000)  # DC offset
    sf.write(actor / "03-01-04-01-02-01-01.wav", np.zeros(16_000), 16_000)  # digital silence
    sf.write(actor / "03-01-04-01-02-02-01.wav", np.clip(5 * tone, -1, 1), 16_000)  # clipped
    sf.write(actor / "03-01-05-01-01-01-01.wav", tone, 16_000, subtype="PCM_U8")  # 8-bit
    clips, rejected = scan(root, progress=False, max_duration_s=1.5)
    reasons = dict(zip(rejected["path"], rejected["reason"]))
    assert reasons.pop("Actor_01/03-01-01-01-01-02-01.wav").startswith(
        "truncated: the WAV data chunk runs 16022 bytes past the end of the file")
    assert reasons.pop("Actor_01/03-01-01-01-02-01-01.wav") == "a FIFO"
    assert reasons.pop("Actor_01/03-01-01-01-02-02-01.wav").startswith("a dangling symbolic link (to ")
    assert reasons.pop("Actor_01/03-01-03-01-01-01-01.wav") == "a symbolic link that loops"
    assert reasons.pop("Actor_01/loop").startswith("a link to a folder already scanned")
    assert reasons.pop("Actor_01/03-01-03-01-01-02-01.wav") == "a folder named like an audio file"
    assert reasons.pop("Actor_01/03-01-03-01-02-01-01.wav").startswith(
        "too long: 2.0 s > dataset.max_duration_s = 1.5 s")
    assert reasons == {}
    flags = clips.set_index("clip_id")["audio_flags"].to_dict()
    assert flags == {"03-01-01-01-01-01-01": "", "03-01-04-01-01-01-01": "",
                     "03-01-04-01-01-02-01": "dc_offset", "03-01-04-01-02-01-01": "silent",
                     "03-01-04-01-02-02-01": "clipped", "03-01-05-01-01-01-01": "8bit"}
    notes = build_index(root, progress=False, max_duration_s=1.5).notes
    assert "audio: 1 clip(s) flagged dc_offset (kept; see the audio_flags column of clips.parquet)" in notes


def test_filters_select_by_every_field(demo_root):
    clips, _ = scan(demo_root, progress=False)
    pick = lambda **kw: apply_filters(clips, filters(**kw), SPEC)  # noqa: E731
    assert len(pick()) == 8
    assert list(pick(speakers=[12])["clip_id"]) == list(pick(actors=[12])["clip_id"])
    assert set(pick(emotion=["sad"])["emotion"]) == {"sad"} and len(pick(statement=[2])) == 3
    assert set(pick(gender=["female"])["actor"]) == {4, 6, 12}
    assert set(pick(emotions=["sad", "angry"])["emotion"]) == {"sad", "angry"}
    assert len(pick(intensity=["strong"])) == 3
    assert list(pick(actors=[12])["clip_id"]) == ["03-01-01-01-02-01-12", "03-01-03-02-02-01-12"]
    assert pick(vocal_channel=["song"]).empty


def test_max_per_cell_is_a_seeded_draw():
    clips = pd.DataFrame(
        {
            "clip_id": [f"c{i:02d}" for i in range(20)],
            "vocal_channel": "speech",
            "emotion": ["happy"] * 10 + ["sad"] * 10,
            "gender": "male",
            "intensity": "normal",
            "actor": 1,
        }
    )
    first = apply_filters(clips, filters(max_per_cell=3, seed=7), SPEC)
    again = apply_filters(clips, filters(max_per_cell=3, seed=7), SPEC)
    other = apply_filters(clips, filters(max_per_cell=3, seed=8), SPEC)
    assert first.groupby("emotion").size().to_dict() == {"happy": 3, "sad": 3}
    assert list(first["clip_id"]) == list(again["clip_id"])
    assert list(first["clip_id"]) != list(other["clip_id"])


def test_no_valid_clip_fails_naming_the_folder(tmp_path):
    write_tone(tmp_path / "Actor_01" / "hello.wav")
    with pytest.raises(NoValidClipsError, match=str(tmp_path)):
        build_index(tmp_path, progress=False)


def test_filters_that_leave_nothing_say_so(demo_root):
    with pytest.raises(NoValidClipsError, match="none passed dataset.filters"):
        build_index(demo_root, filters(emotions=["calm"]), progress=False)


def test_missing_root_and_bad_filter_values_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.root"):
        scan(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="dataset.filters.emotions"):
        filters(emotions=["joyful"])
    with pytest.raises(KeyError, match="dataset.filters.emotoin: not a filter of corpus ravdess "
                                       r"\(did you mean 'emotion'\?\)"):
        filters(emotoin=["happy"])


def test_full_design_is_the_speech_release():
    design = full_design()
    assert len(design) == 1_440 and design["clip_id"].is_unique
    assert design.groupby("actor").size().eq(60).all()
    assert not ((design["emotion"] == "neutral") & (design["intensity"] == "strong")).any()
    for clip_id in design["clip_id"].sample(50, random_state=0):
        name = parse_name(clip_id)  # every id is a valid RAVDESS name
        row = design.set_index("clip_id").loc[clip_id]
        assert (name.emotion, name.intensity, name.actor) == (row.emotion, row.intensity, row.actor)
