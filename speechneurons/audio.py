"""Audio decoding: any file soundfile reads -> mono float32 at the model's rate.

soundfile (libsndfile) decodes; soxr resamples. Both are small, well kept
and need no FFmpeg or TorchCodec (torchaudio 2.9+ needs TorchCodec to load
audio, and no torchaudio release imports beside torch 2.13: see README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

#: WavLM and its relatives were trained on 16 kHz audio.
MODEL_SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """A file that cannot be decoded; the message names the file's problem."""


@dataclass(frozen=True)
class AudioHeader:
    """What the index records of a file's audio."""

    sample_rate: int
    channels: int
    num_frames: int

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate


def read_header_and_check(path: str | Path) -> AudioHeader:
    """Read the header and decode the whole file once.

    Raises :class:`AudioError` when libsndfile cannot open the file, the
    file holds no samples, the data ends before the header says, or samples
    are not finite: the index rejects such files with that reason.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, EOFError) as err:
        raise AudioError(f"cannot decode: {err}") from err
    if info.frames <= 0 or data.shape[0] == 0:
        raise AudioError("no audio samples")
    if data.shape[0] != info.frames:
        raise AudioError(f"truncated: header says {info.frames} frames, read {data.shape[0]}")
    if not np.isfinite(data).all():
        raise AudioError("non-finite samples")
    return AudioHeader(
        sample_rate=int(info.samplerate), channels=int(info.channels), num_frames=int(info.frames)
    )


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[frames, channels] -> [frames]: the mean over channels."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def load_waveform(path: str | Path, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``: shape [samples].

    Raises :class:`AudioError` naming the file when it cannot be decoded.
    """
    path = Path(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, EOFError) as err:
        raise AudioError(f"{path}: cannot decode: {err}") from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples")
    mono = to_mono(data)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
