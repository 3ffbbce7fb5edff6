"""Send a job's logging, warnings and progress bars to its Snakemake log file.

An error that ends a job is written to the log and named on the job's own
stderr (which Snakemake shows), with the whole traceback there when the log
cannot take it: on a full disk the log stays empty, and the cause would
otherwise be lost. Pure Python: the Snakefile imports :func:`low_disk_note`.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sys
import traceback
from pathlib import Path
from typing import TextIO

#: below this much free space a failed run says that the disk is (nearly) full
LOW_DISK_BYTES = 256 * 2**20


def _is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` or an error it was raised from or during is "no space left on device"."""
    while error is not None:
        if isinstance(error, OSError) and (error.errno == errno.ENOSPC or "No space left" in str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def low_disk_note(folder: str | Path, threshold: int = LOW_DISK_BYTES) -> str | None:
    """A sentence on the free space of the disk that holds ``folder`` when under ``threshold``."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free >= threshold:
        return None
    return (f"The disk that holds {folder} has {free / 2**20:.0f} MiB free: a job that cannot write "
            "its output or its log fails, often with an empty log. Free space (or point results/ "
            "elsewhere), then rerun: the failed jobs run again.")


def _report_error(log_path: Path, stream: TextIO):
    def hook(kind, error, trace) -> None:
        text = "".join(traceback.format_exception(kind, error, trace))
        logged = True
        try:
            stream.write(text)
            stream.flush()
        except OSError as failed:
            logged = False
            error.__context__ = error.__context__ or failed
        lines = [text if not logged else f"{kind.__name__}: {error} (traceback in {log_path})\n"]
        if not logged:
            lines.append(f"(the log {log_path} could not be written)\n")
        if _is_disk_full(error) or not logged:
            lines.append((low_disk_note(log_path.parent, threshold=2**63) or "") + "\n")
        sys.__stderr__.write("".join(lines))
        sys.__stderr__.flush()
    return hook


def log_to_file(path: str | Path) -> TextIO:
    """Route logging and stderr (tqdm bars, warnings) of this process to ``path``; an uncaught
    error goes there and to the process's original stderr."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", buffering=1)
    sys.stderr = stream
    sys.excepthook = _report_error(path, stream)
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    return stream
