"""Synthetic audio for cases the real clips cannot show (odd rates, corrupt files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_tone(path: Path, seconds: float = 1.0, rate: int = 16_000, channels: int = 1,
               freq: float = 220.0, subtype: str = "PCM_16") -> Path:
    """A sine tone (same on every channel) written with soundfile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.repeat(tone[:, None], channels, axis=1), rate, subtype=subtype)
    return path
