"""The activation cache: pooled statistics of both sites, frame-level arrays, the matrix loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from speechneurons.unit_arrays import read_units, write_unit_arrays
from speechneurons.activations import pooled_activations
from speechneurons.cache import activation_matrix
from speechneurons.schemas import ACTIVATION_SCHEMA
from speechneurons.audio import load_waveform

CLIPS = pd.DataFrame({
    "clip_id": ["03-01-01-01-01-01-01", "03-01-05-02-01-01-06"],
    "path": ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_06/03-01-05-02-01-01-06.wav"],
})


@pytest.fixture(scope="module")
def shard(tiny_model, demo_root):
    return pooled_activations(tiny_model, CLIPS, demo_root, ("hidden", "ffn"), keep_frames=True,
                              progress=False)


def test_pooled_values_are_frame_statistics(tiny_model, demo_root, shard):
    pooled = shard.pooled
    assert list(pooled.columns) == list(ACTIVATION_SCHEMA)
    assert len(pooled) == 2 * (3 * 32 + 2 * 64)
    wave = torch.from_numpy(load_waveform(demo_root / CLIPS.path[1]))
    with torch.inference_mode():
        ffn = tiny_model.read(wave[None], [("ffn", 2)])[("ffn", 2)][0, :, 17]
    row = pooled[(pooled.clip_id == CLIPS.clip_id[1]) & (pooled.site == "ffn")
                 & (pooled.layer == 2) & (pooled.neuron == 17)].iloc[0]
    assert row["mean"] == pytest.approx(ffn.mean().item(), abs=1e-6)
    assert row["std"] == pytest.approx(ffn.std(unbiased=False).item(), abs=1e-6)
    assert row["max"] == pytest.approx(ffn.max().item(), abs=1e-6)
    frames = shard.frames[CLIPS.clip_id[1]]
    assert frames.dtype == np.float16 and frames.shape == (len(ffn), 224)
    column = shard.units.index[(shard.units.site == "ffn") & (shard.units.layer == 2)
                               & (shard.units.neuron == 17)][0]
    np.testing.assert_allclose(frames[:, column], ffn.numpy(), rtol=1e-3, atol=1e-3)


def test_matrix_loader_and_frame_store(tmp_path, shard):
    halves = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for k, path in enumerate(halves):
        shard.pooled[shard.pooled.clip_id == CLIPS.clip_id[k]].to_parquet(path)
    matrix = activation_matrix(halves, "max")
    assert matrix.clip_ids == list(CLIPS.clip_id)
    assert matrix.values.shape == (2, 224)
    assert matrix.units.equals(shard.units)
    np.testing.assert_array_equal(matrix.values[1], shard.pooled[shard.pooled.clip_id == CLIPS.clip_id[1]]["max"])
    assert activation_matrix(halves, "mean", sites=["ffn"]).values.shape == (2, 128)
    with pytest.raises(ValueError, match="stats.activation"):
        activation_matrix(halves, "median")
    write_unit_arrays(tmp_path / "frames.safetensors", {c: a.T for c, a in shard.frames.items()}, shard.units)
    assert read_units(tmp_path / "frames.safetensors").equals(shard.units)


def test_matrix_columns_and_long_form(tmp_path, shard):
    path = tmp_path / "all.parquet"
    shard.pooled.to_parquet(path)
    matrix = activation_matrix([path], "mean")
    column = matrix.column("ffn", 2, 17)
    wanted = pd.DataFrame({"site": ["ffn", "hidden"], "layer": [2, 0], "neuron": [17, 3]})
    long = matrix.long(wanted)
    assert len(long) == 2 * 2 and set(long["clip_id"]) == set(CLIPS.clip_id)
    row = long[(long.clip_id == matrix.clip_ids[1]) & (long.site == "ffn")].iloc[0]
    assert row["value"] == matrix.values[1, column]
    expected = shard.pooled[(shard.pooled.clip_id == matrix.clip_ids[1]) & (shard.pooled.site == "ffn")
                            & (shard.pooled.layer == 2) & (shard.pooled.neuron == 17)]["mean"].iloc[0]
    assert row["value"] == expected
    with pytest.raises(KeyError, match=r"\(ffn, 7, 0\)"):
        matrix.column("ffn", 7, 0)


def grouped_reader(paths, statistic, sites=None):
    """The reader before issue 22 (a pandas groupby per clip): the reference of the pyarrow one."""
    clip_ids, blocks, units = [], [], None
    for path in paths:
        table = pd.read_parquet(path, columns=["clip_id", "site", "layer", "neuron", statistic])
        if sites is not None:
            table = table[table["site"].isin(list(sites))]
        for clip_id, rows in table.groupby("clip_id", sort=True):
            these = rows[["site", "layer", "neuron"]].reset_index(drop=True)
            if units is None:
                units = these
            elif not these.equals(units):
                raise ValueError(f"{path}: clip {clip_id} has other units than the first clip")
            clip_ids.append(str(clip_id))
            blocks.append(rows[statistic].to_numpy(np.float32))
    order = np.argsort(clip_ids, kind="stable")
    return [clip_ids[i] for i in order], units, np.vstack(blocks)[order]


def test_the_reader_equals_grouping_clip_by_clip_whatever_the_row_order(tmp_path):
    rng = np.random.default_rng(0)
    units = pd.DataFrame({"site": ["hidden"] * 6 + ["ffn"] * 4, "layer": np.int32([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]),
                          "neuron": np.int32([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])})
    paths = []
    for shard, clips in enumerate([["c3", "c1", "c10"], ["c2", "c0"]]):
        table = pd.concat([units.assign(clip_id=c, mean=rng.normal(size=10).astype(np.float32),
                                        std=rng.random(10).astype(np.float32), max=rng.normal(size=10).astype(np.float32))
                           for c in clips], ignore_index=True)
        if shard == 0:  # clips interleaved in the file: each clip's rows keep their order
            table = table.iloc[np.argsort(np.tile(np.arange(10), 3), kind="stable")].reset_index(drop=True)
        paths.append(tmp_path / f"shard{shard}.parquet")
        table.to_parquet(paths[-1], row_group_size=7)  # several row groups, several dictionaries
    for statistic, sites in [("mean", None), ("max", ["ffn"]), ("std", ["hidden", "ffn"])]:
        ids, expected_units, expected = grouped_reader(paths, statistic, sites)
        got = activation_matrix(paths, statistic, sites)
        assert got.clip_ids == ids == ["c0", "c1", "c10", "c2", "c3"]
        pd.testing.assert_frame_equal(got.units, expected_units)
        np.testing.assert_array_equal(got.values, expected)
    damaged = pd.read_parquet(paths[1])
    damaged.loc[damaged.index[-1], "neuron"] = 9  # c0 is read first: c2 differs
    damaged.to_parquet(tmp_path / "damaged.parquet")
    with pytest.raises(ValueError, match="damaged.parquet: clip c2 has other units than the first clip"):
        activation_matrix([tmp_path / "damaged.parquet"], "mean")
    short = pd.read_parquet(paths[1]).iloc[:-1]  # c0 (read first) lacks its last unit
    short.to_parquet(tmp_path / "short.parquet")
    for reader in (grouped_reader, activation_matrix):
        with pytest.raises(ValueError, match="short.parquet: clip c2 has other units than the first clip"):
            reader([tmp_path / "short.parquet"], "mean")


def test_layer_frames_are_hf_hidden_states_and_round_trip_through_the_shard(tiny_model, demo_root, tmp_path):
    """What the SAEs learn from: hidden layers 1 and 2 of each clip equal transformers'
    hidden_states, and the shard file gives one layer back per clip as [frames, width]."""
    from speechneurons.activations import layer_frames
    from speechneurons.sae import read_layer_frames

    frames, units, failed = layer_frames(tiny_model, CLIPS, demo_root, "hidden", [1, 2], progress=False)
    assert failed.empty and len(units) == 2 * 32 and set(units["layer"]) == {1, 2}
    wave = torch.from_numpy(load_waveform(demo_root / CLIPS.path[0]))
    with torch.inference_mode():
        states = tiny_model.model(tiny_model.normalize(wave[None]), output_hidden_states=True).hidden_states
    np.testing.assert_allclose(frames[CLIPS.clip_id[0]][32:].T, states[2][0].numpy(), rtol=1e-5, atol=1e-5)
    write_unit_arrays(tmp_path / "frames.safetensors", frames, units)
    layer = read_layer_frames([tmp_path / "frames.safetensors"], "hidden", 1)
    np.testing.assert_allclose(layer[CLIPS.clip_id[0]], states[1][0].numpy(), rtol=1e-3, atol=1e-3)  # float16
    with pytest.raises(ValueError, match=r"holds no frames of hidden layer 0 \(sae.site, sae.layers\)"):
        read_layer_frames([tmp_path / "frames.safetensors"], "hidden", 0)
