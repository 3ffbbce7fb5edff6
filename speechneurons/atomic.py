"""Outputs that are either whole or absent under their name.

Every table and array a job writes goes to a hidden temporary name beside its
output and is renamed into place when complete (a rename within a folder is
atomic on POSIX file systems), so a job killed mid-write or a full disk never
leaves a cut file under the output's name for a later job to read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, renamed to ``path`` when the block ends
    without an error and removed when it raises. A killed process leaves at most the hidden
    ``.NAME.partial-PID`` beside the output, never a cut file under its name."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def save_arrays(tensors: dict[str, np.ndarray], path: str | Path, metadata: dict[str, str]) -> None:
    """``safetensors.numpy.save_file`` written whole or not at all, readable like any other output
    (safetensors itself writes mode 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    # safetensors writes an array's buffer as it lies in memory: a transposed (Fortran-ordered)
    # view would come back scrambled, so every array is made C-contiguous first
    with atomic_output(path) as partial:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(partial), metadata=metadata)
        os.chmod(partial, 0o666 & ~umask)
