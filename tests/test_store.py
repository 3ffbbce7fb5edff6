"""Attribution storage round trip, and the baselines' own properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from speechneurons.ablation.baselines import make_baseline
from speechneurons.ablation.reductions import make_reduction
from speechneurons.ablation.store import read_attributions
from speechneurons.unit_arrays import read_units, write_unit_arrays

UNITS = pd.DataFrame({"site": ["hidden", "hidden", "ffn"], "layer": [0, 3, 3], "neuron": [5, 5, 100]})


def write_shard(tmp_path, dtype="float32", scale=1.0):
    rng = np.random.default_rng(0)
    curves = {"a": rng.normal(size=(3, 4)) * scale, "b": rng.normal(size=(3, 2)) * scale}
    segments = pd.DataFrame({
        "clip_id": ["a"] * 4 + ["b"] * 2,
        "segment": [0, 1, 2, 3, 0, 1],
        "start_s": [0, 0.02, 0.04, 0.06, 0, 0.02],
        "end_s": [0.02, 0.04, 0.06, 0.07, 0.02, 0.03],
        "level_db": 0.0,
        "loud": True,
    })
    tensors, index = tmp_path / "shard.safetensors", tmp_path / "segments.parquet"
    used = write_unit_arrays(tensors, curves, UNITS, dtype)
    segments.to_parquet(index)
    return curves, tensors, index, used


def test_round_trip_float32_is_exact(tmp_path):
    curves, tensors, index, used = write_shard(tmp_path)
    assert used == "float32"
    assert read_units(tensors).values.tolist() == UNITS.values.tolist()
    long = read_attributions([tensors], [index])
    assert len(long) == 3 * 4 + 3 * 2
    a = long[long.clip_id == "a"]
    np.testing.assert_array_equal(a["attribution"].to_numpy().reshape(3, 4), curves["a"].astype(np.float32))
    assert a[(a.site == "ffn")]["segment"].tolist() == [0, 1, 2, 3]
    assert a["end_s"].iloc[3] == pytest.approx(0.07)
    one = read_attributions([tensors], [index], ["b"], UNITS.iloc[[2]])
    assert one["attribution"].tolist() == pytest.approx(curves["b"][2].tolist(), abs=1e-6)
    assert set(one["site"]) == {"ffn"} and set(one["neuron"]) == {100}


def test_float16_is_close_and_overflow_falls_back(tmp_path):
    curves, tensors, index, used = write_shard(tmp_path, "float16")
    assert used == "float16"
    got = read_attributions([tensors], [index], ["a"])["attribution"].to_numpy().reshape(3, 4)
    np.testing.assert_allclose(got, curves["a"], rtol=5e-4, atol=1e-7)
    _, _, _, used = write_shard(tmp_path, "float16", scale=1e5)
    assert used == "float32"


def test_baselines_do_what_they_say():
    t = torch.arange(16_000) / 16_000
    speech = (0.3 * torch.sin(2 * torch.pi * 200 * t) + 0.3 * torch.sin(2 * torch.pi * 3_000 * t)).float()
    noise = make_baseline("noise-snr20", speech, 16_000, seed=0, clip_id="x")
    snr = 10 * torch.log10(speech.double().pow(2).mean() / noise.double().pow(2).mean())
    assert snr.item() == pytest.approx(20, abs=0.1)
    assert torch.equal(noise, make_baseline("noise-snr20", speech, 16_000, seed=0, clip_id="x"))
    assert not torch.equal(noise, make_baseline("noise-snr20", speech, 16_000, seed=0, clip_id="y"))
    assert not torch.equal(noise, make_baseline("noise-snr20", speech, 16_000, seed=1, clip_id="x"))
    low = make_baseline("lowpass-1000", speech, 16_000)
    spectrum = torch.fft.rfft(low).abs()
    assert spectrum[200] > 1000 * spectrum[3_000]  # 200 Hz kept, 3 kHz removed (1 Hz bins)
    assert torch.equal(make_baseline("zero", speech), torch.zeros_like(speech))
    assert make_baseline("mean", speech).unique().numel() == 1
    with pytest.raises(ValueError, match="ablation.baselines: 'pink'"):
        make_baseline("pink", speech)
    with pytest.raises(ValueError, match="cannot import nowhere.fn"):
        make_baseline("fn-nowhere.fn", speech)
    with pytest.raises(ValueError, match="Nyquist"):
        make_baseline("lowpass-9000", speech, 16_000)


def test_reductions_pick_frames():
    h = torch.arange(2 * 100 * 3, dtype=torch.float32).reshape(2, 100, 3)
    assert torch.equal(make_reduction("frame-7", 50.0)(h), h[:, 7])
    assert torch.equal(make_reduction("time-1.25", 50.0)(h), h[:, 62])
    assert torch.equal(make_reduction("max", 50.0)(h), h[:, -1])
    with pytest.raises(ValueError, match="frame 120 of a clip with 100 frames"):
        make_reduction("frame-120", 50.0)(h)
    with pytest.raises(ValueError, match="ablation.reductions: 'median'"):
        make_reduction("median", 50.0)


def test_knockout_shards_come_back_in_the_activation_matrix_clip_order(tmp_path):
    from speechneurons.knockout.store import read_knocked, write_knocked

    sets = pd.DataFrame({"set_id": ["a", "b", "c"], "held_out": [("s1", "s2"), ("s2",), ("s9",)]})
    shards = []
    for k, clips in enumerate([pd.DataFrame({"clip_id": ["x1", "x4"], "speaker": ["s1", "s2"]}),
                               pd.DataFrame({"clip_id": ["x2", "x3"], "speaker": ["s2", "s1"]})]):
        knocked = {}
        for s in sets.itertuples(index=False):  # a set's rows: the shard's clips of its held-out speakers
            mine = clips[clips["speaker"].isin(s.held_out)]
            knocked[s.set_id] = np.array([[float(c[1:]), 10 * float(c[1:])] for c in mine["clip_id"]]).reshape(-1, 2)
        shards.append(tmp_path / f"shard-{k}.safetensors")
        write_knocked(shards[-1], knocked, clips, sets)
    got = read_knocked(shards, ["a", "b", "c"], ["x4", "x3", "x2", "x1"])
    assert got["a"][:, 0].tolist() == [4, 3, 2, 1] and got["a"][:, 1].tolist() == [40, 30, 20, 10]
    assert got["b"][:, 0].tolist() == [4, 2]  # only speaker s2's clips
    assert "c" not in got  # no shard ran it (its speaker has no clip)
