"""Provenance: what produced a table, stored inside it.

Every parquet table the workflow writes carries, in its schema metadata
under ``speechneurons.provenance``, a JSON object with the rule and the
parameter values that produced it, the package version and git commit, the
model (name, revision, sha256 of its weight file) and the versions of
torch, transformers and captum. :func:`read_provenance` reads it back;
``python -m speechneurons.provenance TABLE`` prints it. Nothing time-dependent
goes in, so two runs of one config write the same provenance.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import speechneurons
from speechneurons.atomic import atomic_output

KEY = b"speechneurons.provenance"
PACKAGES = ("torch", "transformers", "captum", "snakemake", "numpy", "pandas", "scipy", "statsmodels")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _jsonable(value: Any) -> Any:
    """Snakemake params (Namedlist, numpy scalars) as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout the package was imported from (None outside git)."""
    root = Path(speechneurons.__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


@lru_cache(maxsize=1)
def software_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def weight_checksum(name_or_path: str, revision: str | None = None) -> dict[str, str | None]:
    """sha256 of the model's weight file: from a local folder or the hub cache."""
    folder = Path(name_or_path)
    for filename in WEIGHT_FILES:
        candidate = folder / filename if folder.is_dir() else None
        if candidate is None:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name_or_path, filename, revision=revision)
            candidate = Path(cached) if isinstance(cached, str) else None
        if candidate is not None and candidate.is_file():
            return {"weight_file": filename, "weight_sha256": sha256_file(candidate)}
    return {"weight_file": None, "weight_sha256": None}


def model_record(name_or_path: str, revision: str | None = None) -> dict:
    """Name, revision and weight checksum of the model a job loaded."""
    return {"name_or_path": str(name_or_path), "revision": revision,
            **weight_checksum(str(name_or_path), revision)}


def build(rule: str, params: Any, model: dict | None = None, wildcards: Any = None,
          notes: Sequence[str] = ()) -> dict:
    """The provenance record of one job's outputs (``params``, ``wildcards``: mappings or
    Snakemake's Namedlists). ``notes``: sentences on what could not be computed and why,
    which the report shows (see :func:`notes_of`)."""
    as_dict = lambda v: dict(v.items() if hasattr(v, "items") else v or {})  # noqa: E731
    record: dict[str, Any] = {
        "rule": rule,
        "wildcards": _jsonable(as_dict(wildcards)),
        "params": _jsonable(as_dict(params)),
        "package": {"name": "speechneurons", "version": speechneurons.__version__,
                    "git_commit": git_commit()},
        "software": software_versions(),
    }
    if model is not None:
        record["model"] = model
    if notes:
        record["notes"] = list(notes)
    return record


def png_metadata(provenance: dict) -> dict[str, str]:
    """PNG text chunks of a figure: the software and its provenance record (JSON)."""
    return {"Software": "speechneurons", "Description": json.dumps(provenance, sort_keys=True)}


def write_table(frame: pd.DataFrame, path: str | Path, provenance: dict) -> None:
    """``frame.to_parquet(path)`` with ``provenance`` in the schema metadata, written whole or not
    at all (:func:`speechneurons.atomic.atomic_output`)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[KEY] = json.dumps(provenance, sort_keys=True).encode()
    with atomic_output(path) as partial:
        pq.write_table(table.replace_schema_metadata(metadata), str(partial), write_page_checksum=True)


#: rows a streamed table buffers before writing them as one row group
ROW_GROUP_ROWS = 1 << 20


@contextmanager
def table_writer(path: str | Path, provenance: dict, empty: pd.DataFrame) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends a DataFrame to the parquet table at ``path`` (every frame with
    ``empty``'s columns and dtypes), so that a table larger than memory is written a few row
    groups at a time; ``provenance`` in the schema metadata as :func:`write_table`, and written
    whole or not at all. With no frame appended, ``empty`` is written."""
    writer: pq.ParquetWriter | None = None
    pending: list[pa.Table] = []
    rows = 0

    def flush(partial: Path) -> None:
        nonlocal writer, pending, rows
        if not pending:
            return
        table = pa.concat_tables(pending)
        if writer is None:
            metadata = {**(table.schema.metadata or {}), KEY: json.dumps(provenance, sort_keys=True).encode()}
            writer = pq.ParquetWriter(str(partial), table.schema.with_metadata(metadata), write_page_checksum=True)
        writer.write_table(table)
        pending, rows = [], 0

    with atomic_output(path) as partial:
        def append(frame: pd.DataFrame) -> None:
            nonlocal rows
            pending.append(pa.Table.from_pandas(frame, preserve_index=False))
            rows += len(frame)
            if rows >= ROW_GROUP_ROWS:
                flush(partial)

        try:
            yield append
            flush(partial)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            write_table(empty, partial, provenance)


def read_provenance(path: str | Path) -> dict:
    """The provenance stored in a table written by :func:`write_table` ({} if none)."""
    metadata = pq.read_schema(str(path)).metadata or {}
    return json.loads(metadata[KEY]) if KEY in metadata else {}


def notes_of(path: str | Path) -> list[str]:
    """The notes stored with a table by :func:`build` ([] if none)."""
    return list(read_provenance(path).get("notes", []))


def upstream_model(paths: Sequence[str | Path]) -> dict | None:
    """The model record of the first upstream table that has one (for derived tables)."""
    for path in paths:
        if str(path).endswith(".parquet"):
            model = read_provenance(path).get("model")
            if model:
                return model
    return None


def main(argv: Sequence[str] | None = None) -> None:
    for path in (argv if argv is not None else sys.argv[1:]):
        print(json.dumps(read_provenance(path), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
