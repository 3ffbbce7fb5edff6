"""Damaged intermediate files, found before any job runs.

A parquet table or safetensors array cut short (a full disk, a copy that
stopped, a crash outside our writers) makes every job that reads it fail, and
Snakemake deletes that job's old, good output first. The Snakefile therefore
checks the files the study has already written with :func:`damaged_outputs`
before any job runs (a few bytes of each: the parquet magic and footer length,
the safetensors header and its data extent) and stops with the file and the
command that regenerates it; the tables downstream stay as they are until the
rerun writes new ones. (Our own writers cannot leave such a file: see
:mod:`speechneurons.atomic`.)

Damage inside a file (a flipped bit in a column's pages, which the frame
check cannot see) is found when a job reads it: every table is written with a
CRC-32 checksum per data page (``write_page_checksum``,
:func:`speechneurons.provenance.write_table`) and read with the checksums
verified (:func:`read_parquet`, the activation cache), so a damaged table
stops the job with its name and the same remedy instead of a decoder's
"Unexpected end of stream". Pure Python: the Snakefile imports it (pandas and
pyarrow load only when a job reads a table).
"""

from __future__ import annotations

import json
import shlex
import struct
from collections.abc import Iterable
from pathlib import Path

PARQUET_MAGIC = b"PAR1"


def parquet_damage(path: Path) -> str | None:
    """Why the parquet file at ``path`` cannot be read in full, or None when its frame is whole.

    A parquet file is ``PAR1``, the column data, a footer, the footer's length
    (4 bytes, little-endian) and ``PAR1`` again.
    """
    size = path.stat().st_size
    if size < 12:
        return f"it holds {size} bytes, fewer than any parquet file"
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(size - 8)
        footer_length, tail = struct.unpack("<i4s", f.read(8))
    if head != PARQUET_MAGIC:
        return "it does not start as a parquet file does"
    if tail != PARQUET_MAGIC or not 0 < footer_length <= size - 12:
        return "it ends before its parquet footer (cut short)"
    return None


def safetensors_damage(path: Path) -> str | None:
    """Why the safetensors file at ``path`` cannot be read in full, or None.

    A safetensors file is an 8-byte little-endian header length n, n bytes of
    JSON giving each tensor's ``data_offsets``, then the data, which must end
    at the end of the file.
    """
    size = path.stat().st_size
    if size < 8:
        return f"it holds {size} bytes, fewer than any safetensors file"
    with open(path, "rb") as f:
        (header_length,) = struct.unpack("<Q", f.read(8))
        if header_length > size - 8:
            return "it ends inside its safetensors header (cut short)"
        try:
            header = json.loads(f.read(header_length))
        except ValueError:
            return "its safetensors header is not valid JSON"
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    expected = 8 + header_length + max(ends, default=0)
    if size < expected:
        return f"it ends {expected - size} bytes before its last array does (cut short)"
    if size > expected:
        return f"it holds {size - expected} bytes past its last array"
    return None


class DamagedFileError(RuntimeError):
    """A table or array that cannot be read in full: the message names it and the remedy."""


def damaged_message(path: str | Path, why: str, command: str = "snakemake") -> str:
    """The file, what is wrong and the commands that regenerate it."""
    return (f"{path} is damaged: {why}. Delete it and run again: the job that writes it reruns, "
            f"then the jobs that read it:\n    rm {shlex.quote(str(path))} && {command}")


def read_parquet(path: str | Path, **options):
    """``pandas.read_parquet(path, **options)`` with every data page's checksum verified (pages
    written without one are read as they are). Raises :class:`DamagedFileError` naming the file
    and the remedy when the file cannot be decoded; a missing file raises FileNotFoundError."""
    import pandas as pd
    import pyarrow as pa

    try:
        return pd.read_parquet(path, page_checksum_verification=True, **options)
    except (OSError, pa.ArrowException) as err:
        if not Path(path).is_file():
            raise
        raise DamagedFileError(damaged_message(path, f"{type(err).__name__}: {err}",
                                               "snakemake (with the options you ran)")) from err


CHECKS = {".parquet": parquet_damage, ".safetensors": safetensors_damage}


def damage(path: str | Path) -> str | None:
    """Why the file at ``path`` is damaged, or None when it looks whole or is of a kind not checked."""
    path = Path(path)
    check = CHECKS.get(path.suffix)
    if check is None or not path.is_file():
        return None
    try:
        return check(path)
    except OSError as err:
        return f"it cannot be read ({err.strerror})"


def damaged_outputs(paths: Iterable[str | Path], command: str = "snakemake") -> list[str]:
    """One message per damaged file among ``paths`` (missing files are skipped): the file, what is
    wrong and the commands that regenerate it."""
    messages = []
    for path in dict.fromkeys(map(str, paths)):
        why = damage(path)
        if why:
            messages.append(damaged_message(path, f"{why}. Nothing has run, so the tables made from it are kept",
                                            command))
    return messages
