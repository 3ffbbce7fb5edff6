"""Baselines: what an ablated segment is replaced by."""

from __future__ import annotations

from typing import Callable

import torch

BaselineFn = Callable[[torch.Tensor], torch.Tensor]


def zero_baseline(waveform: torch.Tensor) -> torch.Tensor:
    """Silence (the seed guide's baseline)."""
    return torch.zeros_like(waveform)


def mean_baseline(waveform: torch.Tensor) -> torch.Tensor:
    """The clip's mean sample value (its DC offset) everywhere."""
    return torch.full_like(waveform, float(waveform.mean()))


BASELINES: dict[str, BaselineFn] = {"zero": zero_baseline, "mean": mean_baseline}


def make_baseline(name: str, waveform: torch.Tensor) -> torch.Tensor:
    """[samples] -> [samples] baseline named by ``ablation.baselines``."""
    if name not in BASELINES:
        raise ValueError(f"ablation.baselines: {name!r} is not one of {sorted(BASELINES)}")
    return BASELINES[name](waveform)
