"""Baselines: what an ablated segment is replaced by.

Spelled in ``ablation.baselines`` (path-safe, so they can name folders):

- ``zero``: silence (the original guide's baseline);
- ``mean``: the clip's mean sample value (its DC offset);
- ``noise-snrD``: Gaussian noise alone, at D dB below the clip's mean power
  (e.g. ``noise-snr20``), drawn from ``ablation.seed`` and the clip id, so
  every job draws the same noise for the same clip;
- ``lowpass-F``: the clip itself low-pass filtered at F Hz (4th-order
  Butterworth, zero phase), e.g. ``lowpass-1000``: keeps prosody, removes
  most phonetic detail;
- ``fn-module.function``: a function of yours, importable as
  ``module.function``, called as ``function(waveform, sample_rate,
  generator)`` with a [samples] float32 tensor; it returns [samples].
"""

from __future__ import annotations

import importlib
import re
import zlib
from typing import Callable

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt

BaselineFn = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
SPELLINGS = "zero, mean, noise-snrD, lowpass-F, fn-module.function"
_NOISE = re.compile(r"^noise-snr(-?\d+(?:\.\d+)?)$")
_LOWPASS = re.compile(r"^lowpass-(\d+(?:\.\d+)?)$")
_FUNCTION = re.compile(r"^fn-([A-Za-z_][\w.]*)\.([A-Za-z_]\w*)$")


def zero_baseline(waveform: torch.Tensor, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    return torch.zeros_like(waveform)


def mean_baseline(waveform: torch.Tensor, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    return torch.full_like(waveform, float(waveform.mean()))


def noise_baseline(snr_db: float) -> BaselineFn:
    def noise(waveform: torch.Tensor, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
        power = float(waveform.double().pow(2).mean())
        scale = (power / 10 ** (snr_db / 10)) ** 0.5
        draw = torch.randn(waveform.shape, generator=generator, dtype=torch.float64)
        return (scale * draw).to(waveform.dtype).to(waveform.device)

    return noise


def lowpass_baseline(cutoff_hz: float) -> BaselineFn:
    def lowpass(waveform: torch.Tensor, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
        if not 0 < cutoff_hz < sample_rate / 2:
            raise ValueError(
                f"ablation.baselines: lowpass-{cutoff_hz:g} must be below the Nyquist "
                f"frequency of {sample_rate / 2:g} Hz"
            )
        sos = butter(4, cutoff_hz, btype="low", fs=sample_rate, output="sos")
        filtered = sosfiltfilt(sos, waveform.detach().cpu().double().numpy())
        return torch.from_numpy(np.ascontiguousarray(filtered)).to(waveform.dtype).to(waveform.device)

    return lowpass


def _user_function(module: str, name: str, spec: str) -> BaselineFn:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"ablation.baselines: {spec!r}: cannot import {module}.{name}: {err}") from err


def parse_baseline(spec: str) -> BaselineFn:
    """The baseline function for a spelling of ``ablation.baselines``."""
    if spec == "zero":
        return zero_baseline
    if spec == "mean":
        return mean_baseline
    if match := _NOISE.match(spec):
        return noise_baseline(float(match.group(1)))
    if match := _LOWPASS.match(spec):
        return lowpass_baseline(float(match.group(1)))
    if match := _FUNCTION.match(spec):
        return _user_function(match.group(1), match.group(2), spec)
    raise ValueError(f"ablation.baselines: {spec!r} is not one of {SPELLINGS}")


def clip_generator(seed: int, clip_id: str) -> torch.Generator:
    """A generator seeded by (``ablation.seed``, clip id): the same draw in any shard."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(clip_id.encode()))


def make_baseline(
    spec: str, waveform: torch.Tensor, sample_rate: int = 16_000, seed: int = 0, clip_id: str = ""
) -> torch.Tensor:
    """[samples] -> [samples]: the baseline named ``spec`` for this clip."""
    out = parse_baseline(spec)(waveform, sample_rate, clip_generator(seed, clip_id))
    if out.shape != waveform.shape:
        raise ValueError(
            f"ablation.baselines: {spec!r} returned shape {tuple(out.shape)} for a clip of "
            f"shape {tuple(waveform.shape)}"
        )
    return out.to(dtype=waveform.dtype, device=waveform.device)
