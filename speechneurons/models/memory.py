"""Batches sized to memory: run, and on running out of memory (CUDA or CPU) halve the batch and
run again, saying so in the job's log. The result must not depend on the batch: every caller's
tests check that."""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import torch

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA or CPU allocation failures, whichever way torch reports them."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def run_halving(run: Callable[[int], Result], batch: int, device: torch.device,
                what: str) -> tuple[Result, int]:
    """(``run(batch)``, the batch it ran with), halving ``batch`` after each out-of-memory error
    until 1; ``what`` names the batch in the log (a config key where there is one)."""
    batch = max(1, int(batch))
    while True:
        try:
            return run(batch), batch
        except Exception as err:  # noqa: BLE001 - only memory errors are retried
            if not is_out_of_memory(err) or batch == 1:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            log.warning("out of memory at %s=%d; retrying with %d", what, batch, batch // 2)
            batch //= 2
