"""Figures (seaborn/matplotlib): the seed's per-clip plot and an emotion comparison."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from speechneurons.datasets.ravdess import EMOTIONS  # noqa: E402

EMOTION_ORDER = list(EMOTIONS.values())


def unit_label(site: str, layer: int, neuron: int) -> str:
    return f"{site} layer {layer}, neuron {neuron}"


def choose_example(
    clip_units: pd.DataFrame,
    clip_id: str | None = None,
    layer: int | None = None,
    neuron: int | None = None,
    site: str | None = None,
) -> tuple[str, str, int, int]:
    """The (clip, site, layer, neuron) to draw: given values, else the strongest.

    With no unit given, the unit with the largest mean absolute attribution
    mass over clips; with no clip given, that unit's clip of largest mass.
    Raises KeyError naming the ``figures.*`` key that matches nothing.
    """
    table = clip_units
    if site is not None:
        table = table[table["site"] == site]
        if table.empty:
            raise KeyError(f"figures.site={site!r}: no attributions for that site")
    if layer is not None:
        table = table[table["layer"] == layer]
        if table.empty:
            raise KeyError(f"figures.layer={layer}: no attributions for that layer")
    if neuron is not None:
        table = table[table["neuron"] == neuron]
        if table.empty:
            raise KeyError(f"figures.neuron={neuron}: no attributions for that neuron")
    strongest = table.groupby(["site", "layer", "neuron"])["abs_mass"].mean().idxmax()
    site, lay, neu = strongest
    unit_rows = table[(table["site"] == site) & (table["layer"] == lay) & (table["neuron"] == neu)]
    if clip_id is not None:
        if clip_id not in set(unit_rows["clip_id"]):
            raise KeyError(f"figures.clip_id={clip_id!r}: not among the ablated clips")
        chosen = clip_id
    else:
        chosen = unit_rows.loc[unit_rows["abs_mass"].idxmax(), "clip_id"]
    return str(chosen), str(site), int(lay), int(neu)


def plot_clip_attribution(
    waveform: np.ndarray, sample_rate: int, curve: pd.DataFrame, title: str
) -> plt.Figure:
    """The seed's plot: waveform [samples] above the attribution per segment.

    ``curve`` has start_s, end_s and attribution for one clip and one unit.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 1]})
    t = np.arange(len(waveform)) / sample_rate
    top.plot(t, waveform, lw=0.5, color="0.25")
    top.set_ylabel("amplitude")
    top.set_title(title)
    starts = curve["start_s"].to_numpy()
    widths = (curve["end_s"] - curve["start_s"]).to_numpy()
    values = curve["attribution"].to_numpy()
    colours = np.where(values >= 0, "tab:red", "tab:blue")
    bottom.bar(starts, values, width=widths, align="edge", color=colours)
    bottom.axhline(0, color="0.5", lw=0.5)
    bottom.set_ylabel("attribution\n(original − ablated)")
    bottom.set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def plot_emotion_comparison(clip_units: pd.DataFrame, title: str) -> plt.Figure:
    """Per-clip total attribution of one unit by emotion, points coloured by gender."""
    order = [e for e in EMOTION_ORDER if e in set(clip_units["emotion"])]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.boxplot(data=clip_units, x="emotion", y="total", order=order, color="0.9",
                showfliers=False, ax=ax)
    sns.stripplot(data=clip_units, x="emotion", y="total", order=order, hue="gender",
                  hue_order=["female", "male"], dodge=False, size=6, ax=ax)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_ylabel("total attribution per clip")
    ax.set_title(title)
    fig.tight_layout()
    return fig
