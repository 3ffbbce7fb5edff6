"""Provenance inside tables: what produced them, and of which model weights."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from speechneurons import provenance


def test_round_trip_in_parquet_metadata(tmp_path, tiny_model_dir):
    record = provenance.build("ablation", {"segment_ms": np.int64(20), "layers": ("all",)},
                              provenance.model_record(str(tiny_model_dir)), {"shard": "0"})
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    path = tmp_path / "t.parquet"
    provenance.write_table(frame, path, record)
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    back = provenance.read_provenance(path)
    assert back["params"] == {"segment_ms": 20, "layers": ["all"]}
    assert back["wildcards"] == {"shard": "0"}
    expected = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert back["model"]["weight_sha256"] == expected
    assert back["package"]["version"] == "0.2.0"
    assert provenance.upstream_model([path]) == back["model"]
    frame.to_parquet(tmp_path / "plain.parquet")
    assert provenance.read_provenance(tmp_path / "plain.parquet") == {}


def test_an_uncached_hub_model_has_no_checksum(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    record = provenance.model_record("someone/not-cached", "main")
    assert record == {"name_or_path": "someone/not-cached", "revision": "main",
                      "weight_file": None, "weight_sha256": None}
