"""Listening to the evidence: one HTML page with each chosen clip's audio and attribution.

Each section embeds a clip (16 kHz WAV) and a plot of one unit's
attribution over time; a cursor follows playback across the plot. The page
is self-contained (base64), so the Snakemake report carries it as it is.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf

from speechneurons.ablation.store import read_attributions
from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.figures import _bars, choose_example, clip_caption, unit_label, voicing_and_f0
from speechneurons.prosody import ProsodyTracks
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


def clip_section(title: str, waveform: np.ndarray, sample_rate: int, curve: pd.DataFrame,
                 track: pd.DataFrame | None = None) -> ClipSection:
    """One clip: audio player above its attribution curve (per-segment bars), with a cursor; with
    the clip's prosody ``track``, shaded where voiced and with its F0 contour (right axis)."""
    duration = len(waveform) / sample_rate
    fig, ax = plt.subplots(figsize=(10, 2.6))
    t = np.arange(len(waveform)) / sample_rate
    scale = float(np.abs(curve["attribution"]).max()) or 1.0
    ax.plot(t, waveform / (np.abs(waveform).max() or 1) * scale, lw=0.4, color="0.8")
    twin = voicing_and_f0(ax, track)
    if twin is not None:
        twin.set_xlim(0, duration)
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


def clip_sections(clips: pd.DataFrame, clip_ids: Iterable[str], curves: pd.DataFrame, root: str | Path,
                  spec: CorpusSpec, prosody: ProsodyTracks) -> list[ClipSection]:
    """One section per clip of ``clip_ids``: its audio (read from ``root``) above its attribution
    curve, over its voicing and F0 (``prosody``; none for a clip without a track).

    clips: the index, by clip_id; curves: long attributions of one unit (clip_id, segment,
    start_s, end_s, attribution).
    """
    sections = []
    for clip_id in clip_ids:
        clip = clips.loc[clip_id]
        title = f"{clip_id}: {clip_caption(clip, spec)} ({SPEAKER} {clip[SPEAKER]})"
        curve = curves[curves["clip_id"] == clip_id].sort_values("segment")
        track = prosody.track(clip_id) if clip_id in prosody else None
        sections.append(clip_section(title, load_waveform(Path(root) / clip["path"]), MODEL_SAMPLE_RATE, curve,
                                     track))
    return sections


def listening_page(title: str, description: str, sections: list[ClipSection]) -> str:
    """A self-contained page (base64 audio and images) with one section per clip."""
    return render(TEMPLATE, title=title, description=description, sections=sections)


def example_listening_page(clips: pd.DataFrame, clip_units: pd.DataFrame, attributions: list[str],
                           segments: list[str], figures: dict, spec: CorpusSpec, root: str | Path,
                           combination: str, prosody: ProsodyTracks) -> str:
    """The listening page of one combination: the example unit (``figures.site/layer/neuron``,
    else the strongest) on ``figures.listen_per_level`` clips per target level.

    clips: the index, by clip_id; attributions, segments: the combination's shards; prosody:
    the clips' tracks (voicing and F0 under each curve).
    """
    if clip_units.empty:  # nothing was ablated (an empty selection): a page that says so
        return listening_page("Listen", f"Nothing to listen to ({combination}): no unit was ablated, "
                              "see the problems page.", [])
    _, site, layer, neuron = choose_example(clip_units, figures["clip_id"], figures["layer"],
                                            figures["neuron"], figures["site"])
    chosen = listening_clips(clip_units, site, layer, neuron, figures["listen_per_level"], spec.target)
    unit = pd.DataFrame({"site": [site], "layer": [layer], "neuron": [neuron]})
    curves = read_attributions(attributions, segments, chosen["clip_id"], unit)
    label = unit_label(site, layer, neuron)
    return listening_page(f"Listen: {label}", f"Attribution of {label} ({combination}).",
                          clip_sections(clips, chosen["clip_id"], curves, root, spec, prosody))


def listening_clips(clip_units: pd.DataFrame, site: str, layer: int, neuron: int,
                    per_level: int, target: str) -> pd.DataFrame:
    """The clips to listen to: per level of ``target``, the ``per_level`` of largest attribution
    mass for the unit."""
    rows = unit_rows(clip_units, site, layer, neuron)
    return (rows.sort_values("abs_mass", ascending=False).groupby(target, sort=False)
            .head(per_level).sort_values([target, "clip_id"]))
