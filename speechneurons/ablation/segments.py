"""Segments: contiguous spans of the 16 kHz waveform that are ablated together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Segments:
    """A clip cut into consecutive segments of ``segment_samples`` (the last may be shorter)."""

    num_samples: int
    segment_samples: int
    sample_rate: int

    def __len__(self) -> int:
        return -(-self.num_samples // self.segment_samples)

    @property
    def starts(self) -> np.ndarray:
        """[segments] first sample of each segment."""
        return np.arange(len(self), dtype=np.int64) * self.segment_samples

    @property
    def ends(self) -> np.ndarray:
        """[segments] one past the last sample of each segment."""
        return np.minimum(self.starts + self.segment_samples, self.num_samples)

    @property
    def start_s(self) -> np.ndarray:
        return self.starts / self.sample_rate

    @property
    def end_s(self) -> np.ndarray:
        return self.ends / self.sample_rate

    def sample_to_segment(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """[samples] the segment index of every sample (a Captum feature mask)."""
        return torch.arange(self.num_samples, device=device) // self.segment_samples


def segment_samples_for(segment_ms: float, sample_rate: int, hop_samples: int) -> int:
    """Samples per segment for ``ablation.segment_ms``; must be whole model frames.

    Aligning segments to the model's hop (320 samples = 20 ms for WavLM)
    keeps every segment a whole number of output frames.
    """
    samples = segment_ms * sample_rate / 1000
    if samples <= 0 or samples != int(samples) or int(samples) % hop_samples:
        hop_ms = 1000 * hop_samples / sample_rate
        raise ValueError(
            f"ablation.segment_ms={segment_ms}: must be a positive multiple of the "
            f"model's hop of {hop_samples} samples ({hop_ms:g} ms at {sample_rate} Hz)"
        )
    return int(samples)


def make_segments(
    num_samples: int, segment_ms: float, sample_rate: int, hop_samples: int
) -> Segments:
    """Cut a clip of ``num_samples`` into hop-aligned segments of ``segment_ms``."""
    return Segments(
        num_samples=num_samples,
        segment_samples=segment_samples_for(segment_ms, sample_rate, hop_samples),
        sample_rate=sample_rate,
    )


def segment_levels_db(waveform: np.ndarray, segments: Segments) -> np.ndarray:
    """[segments] RMS level of each segment in dB relative to the clip's loudest segment."""
    power = np.array([
        np.mean(np.square(waveform[s:e], dtype=np.float64)) for s, e in zip(segments.starts, segments.ends)
    ])
    peak = power.max(initial=0.0)
    if peak <= 0:
        return np.full(len(segments), -np.inf)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power / peak)

