"""Listening to the evidence: one HTML page with each chosen clip's audio and attribution.

Each section embeds a clip (16 kHz WAV) and a plot of one unit's
attribution over time; a cursor follows playback across the plot. The page
is self-contained (base64), so the Snakemake report carries it as it is.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf

from speechneurons.figures import _bars
from speechneurons.pages import render
from speechneurons.schemas import unit_rows

#: The page's template (speechneurons/templates/); player.html holds a clip's section.
TEMPLATE = "listening.html"


@dataclass(frozen=True)
class ClipSection:
    """One clip of a page: its title, base64 WAV and PNG, and where the plot's axes lie.

    duration: seconds of audio; left, span: the axes' left edge and width in
    percent of the image's width (the playback cursor moves over that span).
    """

    title: str
    audio: str
    image: str
    duration: float
    left: float
    span: float


def _wav_base64(waveform: np.ndarray, sample_rate: int) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(waveform, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode()


def clip_section(title: str, waveform: np.ndarray, sample_rate: int, curve: pd.DataFrame) -> ClipSection:
    """One clip: audio player above its attribution curve (per-segment bars), with a cursor."""
    duration = len(waveform) / sample_rate
    fig, ax = plt.subplots(figsize=(10, 2.6))
    t = np.arange(len(waveform)) / sample_rate
    scale = float(np.abs(curve["attribution"]).max()) or 1.0
    ax.plot(t, waveform / (np.abs(waveform).max() or 1) * scale, lw=0.4, color="0.8")
    _bars(ax, curve)
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("attribution\n(\u0394 activation)")
    fig.tight_layout()
    box = ax.get_position()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return ClipSection(title=title, audio=_wav_base64(waveform, sample_rate),
                       image=base64.b64encode(buffer.getvalue()).decode(),
                       duration=duration, left=100 * box.x0, span=100 * box.width)


def listening_page(title: str, description: str, sections: list[ClipSection]) -> str:
    """A self-contained page (base64 audio and images) with one section per clip."""
    return render(TEMPLATE, title=title, description=description, sections=sections)


def listening_clips(clip_units: pd.DataFrame, site: str, layer: int, neuron: int,
                    per_level: int, target: str) -> pd.DataFrame:
    """The clips to listen to: per level of ``target``, the ``per_level`` of largest attribution
    mass for the unit."""
    rows = unit_rows(clip_units, site, layer, neuron)
    return (rows.sort_values("abs_mass", ascending=False).groupby(target, sort=False)
            .head(per_level).sort_values([target, "clip_id"]))
