"""Reductions: how a unit's frames become the one number that is attributed."""

from __future__ import annotations

from typing import Callable

import torch

ReductionFn = Callable[[torch.Tensor], torch.Tensor]

REDUCTIONS: dict[str, ReductionFn] = {
    "mean": lambda h: h.mean(dim=1),
    "max": lambda h: h.max(dim=1).values,
}


def reduce_frames(hidden: torch.Tensor, name: str) -> torch.Tensor:
    """[batch, frames, units] -> [batch, units] by ``ablation.reductions``."""
    if name not in REDUCTIONS:
        raise ValueError(f"ablation.reductions: {name!r} is not one of {sorted(REDUCTIONS)}")
    return REDUCTIONS[name](hidden)
