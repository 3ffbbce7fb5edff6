"""Damaged intermediate files are found by their bytes; outputs are whole or absent; a failed job
names its error, and a full disk, where its log cannot."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import load_file

from speechneurons.atomic import atomic_output, save_arrays
from speechneurons.integrity import damage, damaged_outputs
from speechneurons.logs import low_disk_note
from speechneurons.provenance import write_table


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "table.parquet"
    frame = pd.DataFrame({"clip_id": [f"c{i}" for i in range(200)], "value": np.arange(200.0)})
    write_table(frame, path, {"rule": "test"})
    return path


@pytest.fixture
def arrays(tmp_path):
    path = tmp_path / "arrays.safetensors"
    save_arrays({"a": np.ones((3, 5), np.float16), "b": np.zeros((2,), np.float32)}, path, {"k": "v"})
    return path


def cut(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def test_whole_files_pass(table, arrays):
    assert damage(table) is None and damage(arrays) is None
    assert damage(table.with_name("missing.parquet")) is None  # missing files are not damaged
    assert damaged_outputs([table, arrays, table.with_name("missing.parquet")]) == []


@pytest.mark.parametrize("keep", [0, 5, 100, -1])
def test_a_cut_parquet_file_is_damaged_and_pyarrow_agrees(table, keep):
    size = table.stat().st_size
    cut(table, keep if keep >= 0 else size - 1)
    assert damage(table) is not None
    with pytest.raises(Exception):
        pq.read_table(table)


@pytest.mark.parametrize("keep, why", [(4, "fewer than any"), (20, "inside its safetensors header"),
                                       (-3, "bytes before its last array")])
def test_a_cut_safetensors_file_is_damaged_and_safetensors_agrees(arrays, keep, why):
    cut(arrays, keep if keep >= 0 else arrays.stat().st_size + keep)
    assert why in damage(arrays)
    with pytest.raises(Exception):
        load_file(arrays)


def test_trailing_bytes_and_a_foreign_file_are_damaged(table, arrays):
    arrays.write_bytes(arrays.read_bytes() + b"xx")
    assert damage(arrays) == "it holds 2 bytes past its last array"
    table.write_bytes(b"not a parquet file at all")
    assert damage(table) == "it does not start as a parquet file does"


def test_the_message_names_the_file_and_the_command(tmp_path, table):
    odd = tmp_path / "a folder" / "shard-0.parquet"
    odd.parent.mkdir()
    odd.write_bytes(table.read_bytes()[:-10])
    (message,) = damaged_outputs([odd, table], command="snakemake --cores 2")
    assert message.startswith(f"{odd} is damaged: it ends before its parquet footer (cut short).")
    assert message.endswith(f"rm '{odd}' && snakemake --cores 2")


def test_a_failed_write_keeps_the_last_good_file(table):
    before = table.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_output(table) as partial:
            partial.write_bytes(b"PAR1 half a table")
            raise RuntimeError("disk full")
    assert table.read_bytes() == before
    assert sorted(p.name for p in table.parent.iterdir()) == ["table.parquet"]  # no partial left


def test_saved_arrays_round_trip_with_shared_permissions(arrays):
    loaded = load_file(arrays)
    assert loaded["a"].dtype == np.float16 and loaded["a"].shape == (3, 5)
    umask = os.umask(0)
    os.umask(umask)
    assert arrays.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_error_reaches_stderr_when_the_log_cannot_be_written(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does: the traceback, which the log
    would have held, goes to the job's stderr with a note on the disk."""
    code = ("from speechneurons.logs import log_to_file\n"
            "log_to_file('/dev/full')\n"
            "raise RuntimeError('the job failed here')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0  # 120 where Python's last flush of the log fails too
    assert "RuntimeError: the job failed here" in done.stderr
    assert "Traceback" in done.stderr and "the log /dev/full could not be written" in done.stderr
    assert "MiB free" in done.stderr


def test_an_error_is_named_on_stderr_and_logged_in_full(tmp_path):
    log = tmp_path / "job.log"
    code = (f"from speechneurons.logs import log_to_file\nlog_to_file({str(log)!r})\n"
            "raise ValueError('bad input')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"ValueError: bad input (traceback in {log})"
    assert "Traceback" in log.read_text() and "ValueError: bad input" in log.read_text()


def test_low_disk_note(tmp_path):
    assert low_disk_note(tmp_path) is None
    note = low_disk_note(tmp_path / "not yet" / "made", threshold=2**63)
    assert note.startswith(f"The disk that holds {tmp_path} has ") and "MiB free" in note


def test_a_transposed_array_is_written_as_it_reads(tmp_path):
    """safetensors writes an array's memory buffer as it lies: a transposed view came back
    scrambled (found while saving an SAE's encoder); save_arrays writes what the array reads as."""
    from safetensors.numpy import load_file

    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_arrays({"t": values.T, "f": np.asfortranarray(values)}, tmp_path / "a.safetensors", {})
    loaded = load_file(str(tmp_path / "a.safetensors"))
    assert np.array_equal(loaded["t"], values.T) and np.array_equal(loaded["f"], values)


def test_a_flipped_bit_inside_a_table_stops_the_reader_naming_the_file(tmp_path):
    """Damage inside a table's pages (which the frame check before the jobs cannot see): our tables
    carry a CRC per page, so reading one, as a frame or through the activation cache, stops with
    the file and the remedy. Without the checksums the same flip reads back as other numbers, with
    no error at all."""
    from speechneurons.cache import ActivationCache
    from speechneurons.integrity import DamagedFileError, read_parquet
    from speechneurons.provenance import write_table

    n = 20_000
    table = pd.DataFrame({"clip_id": np.repeat(["a", "b"], n // 2), "site": "hidden", "layer": np.int32(0),
                          "neuron": np.tile(np.arange(n // 2, dtype=np.int32), 2),
                          "mean": np.linspace(0, 1, n, dtype=np.float32), "std": np.float32(0), "max": np.float32(0)})

    def flipped(path):
        column = pq.ParquetFile(path).metadata.row_group(0).column(4)  # the mean column's pages
        assert column.path_in_schema == "mean"
        start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
        at = start + column.total_compressed_size * 3 // 4  # inside its values
        data = bytearray(path.read_bytes())
        data[at] ^= 0x10
        path.write_bytes(bytes(data))
        return path

    plain = tmp_path / "plain.parquet"
    table.to_parquet(plain, compression=None)
    assert not read_parquet(flipped(plain)).equals(table)  # silently other numbers
    checked = tmp_path / "checked.parquet"
    write_table(table, checked, {"rule": "test"})
    pd.testing.assert_frame_equal(read_parquet(checked), table)
    flipped(checked)
    with pytest.raises(DamagedFileError, match=rf"{checked} is damaged: .*CRC.*\n    rm {checked} && snakemake"):
        read_parquet(checked)
    with pytest.raises(DamagedFileError, match=rf"{checked} is damaged"):
        ActivationCache([checked]).matrix()
    with pytest.raises(FileNotFoundError):
        read_parquet(tmp_path / "missing.parquet")
