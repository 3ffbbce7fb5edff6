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


#: thresholds of the audio flags (:func:`audio_flags`), in full-scale units (1.0 = digital maximum)
SILENT_PEAK = 10 ** (-60 / 20)  # the loudest sample below -60 dBFS
DC_OFFSET = 0.01  # |mean| above -40 dBFS ...
DC_TO_AC = 0.1  # ... and above a tenth of the signal's own RMS about its mean
CLIP_LEVEL, CLIPPED_SHARE = 0.999, 0.001  # over 0.1 % of samples at full scale


@dataclass(frozen=True)
class AudioHeader:
    """What the index records of a file's audio; ``flags``: :func:`audio_flags`."""

    sample_rate: int
    channels: int
    num_frames: int
    flags: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate


def audio_flags(data: np.ndarray, subtype: str = "") -> tuple[str, ...]:
    """Why audio that decodes may still mislead (data [frames, channels] float32): the index keeps
    such clips and lists the flags.

    ``silent``: no sample above -60 dBFS (attributions are noise over
    nothing). ``dc_offset``: a mean above -40 dBFS and a tenth of the AC RMS
    (the energy-based loudness flag then calls every segment loud). ``clipped``: over
    0.1 % of samples at full scale. ``8bit``: an 8-bit subtype, or every
    sample on the 8-bit grid (multiples of 1/128) whatever the container.
    """
    mono = data.mean(axis=1, dtype=np.float64)
    flags = []
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak < SILENT_PEAK:
        flags.append("silent")
    mean = float(mono.mean()) if mono.size else 0.0
    if abs(mean) > DC_OFFSET and abs(mean) > DC_TO_AC * float(mono.std()):
        flags.append("dc_offset")
    if data.size and float((np.abs(data) >= CLIP_LEVEL).mean()) > CLIPPED_SHARE:
        flags.append("clipped")
    on_8bit_grid = bool(np.all(np.abs(data * 128 - np.round(data * 128)) < 1e-4))
    if "silent" not in flags and (subtype in ("PCM_U8", "PCM_S8") or on_8bit_grid):
        flags.append("8bit")
    return tuple(flags)


def riff_data_shortfall(path: Path) -> int:
    """Bytes the WAV's ``data`` chunk declares beyond the end of the file (0 when complete or not a
    RIFF/WAVE file). libsndfile reads a cut WAV as a shorter valid one; this finds the cut."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            length = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return max(0, offset + 8 + length - size) if length != 0xFFFFFFFF else 0
            offset += 8 + length + (length & 1)
    return 0


def read_header_and_check(path: str | Path) -> AudioHeader:
    """Read the header and decode the whole file once.

    Raises :class:`AudioError` when libsndfile cannot open the file, the
    file holds no samples, the data ends before the header says (a WAV's
    ``data`` chunk included), or samples are not finite: the index rejects
    such files with that reason. Audio that decodes but may mislead gets
    its :func:`audio_flags`.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
        shortfall = riff_data_shortfall(path)
    except (sf.LibsndfileError, RuntimeError, EOFError, OSError) as err:
        raise AudioError(f"cannot decode: {err}") from err
    if info.frames <= 0 or data.shape[0] == 0:
        raise AudioError("no audio samples")
    if data.shape[0] != info.frames:
        raise AudioError(f"truncated: header says {info.frames} frames, read {data.shape[0]}")
    if shortfall:
        raise AudioError(f"truncated: the WAV data chunk runs {shortfall} bytes past the end of the "
                         "file (an interrupted copy or download; copy the file again)")
    if not np.isfinite(data).all():
        raise AudioError("non-finite samples")
    return AudioHeader(
        sample_rate=int(info.samplerate), channels=int(info.channels), num_frames=int(info.frames),
        flags=audio_flags(data, info.subtype),
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
