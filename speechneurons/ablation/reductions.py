"""Reductions: how a unit's frames become the one number that is attributed.

Spelled in ``ablation.reductions`` (path-safe, so they can name folders):

- ``mean``: the mean over frames (the original guide's choice);
- ``max``: the maximum over frames;
- ``frame-N``: frame N (0-based; one frame per 20 ms hop): the original guide's
  (position, neuron) form, counted in frames rather than samples;
- ``time-S``: the frame that holds time S seconds (``floor(S * fps)``).
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch

ReductionFn = Callable[[torch.Tensor], torch.Tensor]
_FRAME = re.compile(r"^frame-(\d+)$")
_TIME = re.compile(r"^time-(\d+(?:\.\d+)?)$")
SPELLINGS = "mean, max, frame-N (a frame index), time-S (seconds)"


def _one_frame(index: int, spec: str) -> ReductionFn:
    def pick(hidden: torch.Tensor) -> torch.Tensor:
        if index >= hidden.shape[1]:
            raise ValueError(
                f"ablation.reductions: {spec!r} asks for frame {index} of a clip with "
                f"{hidden.shape[1]} frames"
            )
        return hidden[:, index]

    return pick


def make_reduction(spec: str, frames_per_second: float) -> ReductionFn:
    """Parse a reduction spelling; the function maps [batch, frames, units] -> [batch, units]."""
    if spec == "mean":
        return lambda h: h.mean(dim=1)
    if spec == "max":
        return lambda h: h.max(dim=1).values
    if match := _FRAME.match(spec):
        return _one_frame(int(match.group(1)), spec)
    if match := _TIME.match(spec):
        return _one_frame(math.floor(float(match.group(1)) * frames_per_second), spec)
    raise ValueError(f"ablation.reductions: {spec!r} is not one of {SPELLINGS}")
