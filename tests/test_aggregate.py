"""Sharding and aggregation against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speechneurons.datasets.ravdess import SPEC
from speechneurons.shards import shard_clips, shard_of
from speechneurons.aggregate import clip_unit_table, condition_table


def test_shards_partition_the_clips_deterministically():
    clips = pd.DataFrame({"clip_id": [f"c{i:03d}" for i in range(400)]}).sample(frac=1, random_state=3)
    clips["path"] = "speaker/" + clips["clip_id"] + ".wav"
    shards = [shard_clips(clips, k, 4) for k in range(4)]
    ids = [set(s["clip_id"]) for s in shards]
    assert all(70 <= len(s) <= 130 for s in shards)  # a hash: about 100 each
    assert set().union(*ids) == set(clips["clip_id"]) and sum(len(s) for s in ids) == 400
    reshuffled = clips.sample(frac=1, random_state=9)
    assert list(shard_clips(reshuffled, 2, 4)["clip_id"]) == list(shards[2]["clip_id"])
    # a clip added or removed moves no other clip: the other shards' jobs stay as they are
    fewer = [shard_clips(clips.iloc[1:], k, 4) for k in range(4)]
    assert sum(list(a["clip_id"]) != list(b["clip_id"]) for a, b in zip(fewer, shards)) == 1
    assert shard_of("a/x.wav", 4) == shard_of("b/x.flac", 4)  # one stem, one shard (duplicates)
    assert shard_of("speaker/c000.wav", 4) == 1  # fixed: the Snakefile computes the same before any job
    with pytest.raises(ValueError, match="compute.shards=4"):
        shard_clips(clips, 4, 4)


@pytest.fixture
def clips() -> pd.DataFrame:
    return pd.DataFrame({
        "clip_id": ["a", "b", "c", "d"],
        "speaker": [1, 3, 1, 2],
        "actor": [1, 3, 1, 2],
        "modality": ["audio-only"] * 4,
        "vocal_channel": ["speech"] * 4,
        "emotion_code": [3, 3, 3, 4],
        "statement": [1, 2, 1, 1],
        "repetition": [1, 1, 2, 1],
        "emotion": ["happy", "happy", "happy", "sad"],
        "gender": ["male", "male", "male", "female"],
        "intensity": ["normal"] * 4,
    })


@pytest.fixture
def summaries() -> pd.DataFrame:
    rows = []
    for clip, total in zip("abcd", [1.0, 2.0, 6.0, -1.0]):
        rows.append({"clip_id": clip, "site": "hidden", "layer": 1, "neuron": 0, "original": 0.5,
                     "total": total, "abs_mass": abs(total) + 1, "peak_time_s": 0.1 * len(rows)})
    return pd.DataFrame(rows)


def test_condition_table_statistics(clips, summaries):
    table = condition_table(clip_unit_table(summaries, clips, SPEC), SPEC)
    happy = table[table["emotion"] == "happy"].iloc[0]
    values = np.array([1.0, 2.0, 6.0])
    assert (happy["n_clips"], happy["n_speakers"]) == (3, 2)
    assert happy["mean_total"] == pytest.approx(3.0)
    assert happy["std_total"] == pytest.approx(values.std(ddof=1))
    assert happy["sem_total"] == pytest.approx(values.std(ddof=1) / np.sqrt(3))
    assert happy["median_total"] == pytest.approx(2.0)
    assert happy["mean_abs_mass"] == pytest.approx(4.0)
    sad = table[table["emotion"] == "sad"].iloc[0]
    assert sad["n_clips"] == 1 and np.isnan(sad["std_total"])
    assert len(table) == 2


def test_clip_unit_table_refuses_unknown_clips(clips, summaries):
    with pytest.raises(KeyError, match="not in clips.parquet"):
        clip_unit_table(summaries, clips[clips["clip_id"] != "d"], SPEC)
    merged = clip_unit_table(summaries, clips, SPEC)
    # generic columns first (speaker, the factors in the spec's order), then RAVDESS's own
    assert list(merged.columns[:11]) == ["clip_id", "speaker", "emotion", "gender", "intensity",
                                         "statement", "actor", "modality", "vocal_channel",
                                         "emotion_code", "repetition"]


def test_summaries_of_the_last_release_read_under_the_current_names(clips, summaries):
    """0.1.0 called the energy flag's shares voiced_share / voiced_time_share: read for one release."""
    old = summaries.assign(voiced_share=0.25, voiced_time_share=0.5)
    merged = clip_unit_table(old, clips, SPEC)
    assert "voiced_share" not in merged and (merged["loud_share"] == 0.25).all()
    assert (merged["loud_time_share"] == 0.5).all()
    pd.testing.assert_frame_equal(merged, clip_unit_table(
        summaries.assign(loud_share=0.25, loud_time_share=0.5), clips, SPEC))
