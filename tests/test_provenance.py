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


def test_a_streamed_table_equals_the_whole_one_and_is_whole_or_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "ROW_GROUP_ROWS", 5)
    record = provenance.build("activations", {"shard": 1})
    frames = [pd.DataFrame({"clip_id": f"c{i}", "value": np.arange(3, dtype=np.float32) + i}) for i in range(4)]
    empty = pd.DataFrame({"clip_id": pd.Series([], dtype=object), "value": pd.Series([], dtype=np.float32)})
    with provenance.table_writer(tmp_path / "t.parquet", record, empty) as write:
        for frame in frames:
            write(frame)
        assert not (tmp_path / "t.parquet").exists()  # nothing under the name until the end
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups == 2  # 6 rows, then 6
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), pd.concat(frames, ignore_index=True))
    assert provenance.read_provenance(tmp_path / "t.parquet") == provenance.read_provenance(
        _whole(tmp_path, frames, record))
    with provenance.table_writer(tmp_path / "none.parquet", record, empty):
        pass
    assert pd.read_parquet(tmp_path / "none.parquet").empty and provenance.read_provenance(tmp_path / "none.parquet")
    try:
        with provenance.table_writer(tmp_path / "cut.parquet", record, empty) as write:
            write(frames[0])
            write(frames[1])
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert list(tmp_path.glob("*cut*")) == []


def _whole(folder, frames, record):
    provenance.write_table(pd.concat(frames, ignore_index=True), folder / "whole.parquet", record)
    return folder / "whole.parquet"
