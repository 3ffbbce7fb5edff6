"""One bad clip never stops a study: per-clip errors are recorded and the job goes on.

A job that processes clips one at a time wraps each clip in
:meth:`ClipFailures.attempt`. An exception is logged with its traceback and
becomes a row of the job's failed-clips table (``FAILED_SCHEMA``); the job
carries on with the next clip. When *every* clip of a job with two or more
clips fails, the cause is not a clip (a wrong model, a broken install), so the
job raises instead of writing empty results.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import pandas as pd

from speechneurons.schemas import empty_table

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Columns of a failed-clips table: which clip, which stage, what error.
FAILED_SCHEMA = {"clip_id": "str", "path": "str", "stage": "str", "error": "str"}


class ClipFailures:
    """The clips of one job that failed, with their errors."""

    def __init__(self, stage: str):
        self.stage = stage
        self.rows: list[dict] = []

    def attempt(self, clip_id: str, path: str, work: Callable[[], T]) -> T | None:
        """``work()``, or None when it raised (the error is logged and recorded)."""
        try:
            return work()
        except Exception as err:  # noqa: BLE001 - any error of one clip is that clip's
            log.exception("%s: clip %s (%s) failed; the job goes on", self.stage, clip_id, path)
            self.rows.append({"clip_id": clip_id, "path": path, "stage": self.stage,
                              "error": f"{type(err).__name__}: {err}"})
            return None

    def check(self, n_clips: int) -> None:
        """Raise RuntimeError when every one of two or more clips failed."""
        if n_clips >= 2 and len(self.rows) == n_clips:
            raise RuntimeError(f"{self.stage}: every one of the job's {n_clips} clips failed, "
                               f"so the cause is not a clip; the first error: {self.rows[0]['error']}")
        if self.rows:
            log.warning("%s: %d of %d clips failed and are listed in the failed-clips table",
                        self.stage, len(self.rows), n_clips)

    def table(self) -> pd.DataFrame:
        """The failed clips (FAILED_SCHEMA; no rows when none failed)."""
        if not self.rows:
            return empty_table(FAILED_SCHEMA)
        return pd.DataFrame(self.rows, columns=list(FAILED_SCHEMA)).astype(FAILED_SCHEMA)
