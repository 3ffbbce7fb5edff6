"""The unit browser: one self-contained page listing the selected units, each with its evidence.

Per unit (strongest top units first): its activation by every factor of the
corpus (mean and 95 % interval over speaker means per level), its
selectivity for the target factor, the probe and knock-out numbers of its
layer, and its top-activating clips with audio players and attribution
curves (a cursor follows playback, as on the listening page). Everything is
inline (base64 audio and images, no network).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from speechneurons.ablation.store import read_attributions
from speechneurons.cache import ActivationMatrix, units_matrix
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.figures import unit_label
from speechneurons.listen import ClipSection, clip_sections
from speechneurons.pages import render
from speechneurons.prosody import ProsodyTracks
from speechneurons.schemas import UNIT, unit_rows
from speechneurons.stats.intervals import t_interval


#: The page's template (speechneurons/templates/).
TEMPLATE = "browser.html"


def browser_units(selected: pd.DataFrame, spec: CorpusSpec, most: int) -> pd.DataFrame:
    """The top units to show: strongest score (speaker-level d) first, each unit once, at most ``most``."""
    top = selected[selected["reason"] == "top_k"].sort_values("score", ascending=False)
    return top.drop_duplicates(UNIT).head(most).reset_index(drop=True)


def top_clips(matrix: ActivationMatrix, site: str, layer: int, neuron: int, count: int) -> list[str]:
    """The ``count`` clips on which the unit's pooled activation is largest."""
    values = matrix.values[:, matrix.column(site, layer, neuron)]
    return [matrix.clip_ids[i] for i in np.argsort(-values, kind="stable")[:count]]


def factor_panels(values: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, title: str) -> str:
    """PNG (base64) of the unit's activation by each factor: speaker means per level, mean and 95 %
    t-interval over speakers."""
    factors = [f for f in spec.factors if meta[f.name].nunique() > 1]
    fig, axes = plt.subplots(1, max(len(factors), 1), figsize=(3.2 * max(len(factors), 1), 2.6),
                             squeeze=False)
    frame = meta.assign(value=values)
    for ax, factor in zip(axes[0], factors):
        levels = [v for v in factor.levels if v in set(frame[factor.name])]
        for i, level in enumerate(levels):
            per_speaker = frame[frame[factor.name] == level].groupby(SPEAKER)["value"].mean().to_numpy()
            low, high = t_interval(per_speaker)
            ax.errorbar([i], [per_speaker.mean()], yerr=[[per_speaker.mean() - low if np.isfinite(low) else 0],
                                                        [high - per_speaker.mean() if np.isfinite(high) else 0]],
                        fmt="o", color="C0", capsize=3)
        ax.set_xticks(range(len(levels)), [str(v) for v in levels], rotation=45, fontsize=8)
        ax.set_title(factor.name, fontsize=9)
    if not factors:
        axes[0, 0].axis("off")
    axes[0, 0].set_ylabel("pooled activation", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else (
        f"{value:.{digits}g}" if isinstance(value, float) else str(value))


def unit_numbers(unit: pd.Series, spec: CorpusSpec, selectivity: pd.DataFrame, probes: pd.DataFrame,
                 knockout: pd.DataFrame) -> dict[str, str]:
    """The unit's selectivity, its layer's probe and its set's knock-out, as label -> text."""
    key = (selectivity["site"] == unit["site"]) & (selectivity["layer"] == unit["layer"]) & (
        selectivity["neuron"] == unit["neuron"]) & (selectivity["factor"] == spec.target)
    out = {f"top unit for {spec.target}": f"{unit[spec.target]} (rank {unit['rank']}, "
                                            f"speaker-level d {_fmt(unit['score'])})"}
    if key.any():
        row = selectivity[key].iloc[0]
        out[f"{spec.target} selectivity"] = (f"eta2 {_fmt(row['eta2'])}, speaker-general q "
                                             f"{_fmt(row['q_speaker'])}, selective: {bool(row['selective'])}")
    probe = probes[(probes["site"] == unit["site"]) & (probes["layer"] == unit["layer"])
                   & (probes["factor"] == spec.target)] if len(probes) else probes
    if len(probe):
        row = probe.iloc[0]
        out[f"probe for {spec.target} at this layer"] = (
            f"balanced accuracy {_fmt(row['balanced_accuracy'])} [{_fmt(row['ci_low'])}, "
            f"{_fmt(row['ci_high'])}], chance {_fmt(row['chance'])}, p_perm {_fmt(row['p_perm'])}")
    knock = knockout[(knockout["site"] == unit["site"]) & (knockout["layer"] == unit["layer"])
                     & (knockout["probe_layer"] == unit["layer"])
                     & (knockout["level"].astype(str) == str(unit[spec.target]))] \
        if len(knockout) else knockout.iloc[0:0]
    if len(knock):
        row = knock.iloc[0]
        out["knock-out of its level's units"] = (
            f"own-level recall loss {_fmt(row['own_loss_selected'])} (matched random "
            f"{_fmt(row['own_loss_random'])}); specificity difference "
            f"{_fmt(row['specificity_difference'])} [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}], "
            f"p {_fmt(row['p'])}")
    return out


@dataclass(frozen=True)
class UnitArticle:
    """One unit's block of the page: its label, numbers (label -> text), base64 PNG of its factor
    panels, and its top clips."""

    label: str
    numbers: dict[str, str]
    panels: str
    clips: list[ClipSection]


def unit_article(label: str, numbers: dict[str, str], panels: str,
                 clip_sections: list[ClipSection]) -> UnitArticle:
    """One unit's block of the page."""
    return UnitArticle(label, numbers, panels, list(clip_sections))


def browser_page(title: str, description: str, articles: list[UnitArticle]) -> str:
    """The whole page: the listening page's player and cursor, one article per unit."""
    return render(TEMPLATE, title=title, description=description, articles=articles)


def unit_browser(clips: pd.DataFrame, selected: pd.DataFrame, selectivity: pd.DataFrame,
                 probes: pd.DataFrame, knockout: pd.DataFrame, activations: list[str],
                 attributions: list[str], segments: list[str], browser: dict, spec: CorpusSpec,
                 root: str | Path, combination: str, prosody: ProsodyTracks) -> str:
    """The unit browser of one combination: ``browser.units`` top units, each with its factor
    panels, numbers and ``browser.clips_per_unit`` most active clips.

    clips: the index, by clip_id; probes, knockout: empty where the config does not run them;
    activations: the cache's shards; attributions, segments: the combination's shards; prosody:
    the clips' tracks (voicing and F0 under each curve).
    """
    units = browser_units(selected, spec, browser["units"])
    articles = []
    if len(units):  # no top unit (a target factor with one level): the page says so
        matrix = units_matrix(activations, "mean", units)
        meta = clips.loc[matrix.clip_ids]
        chosen = {tuple(u): top_clips(matrix, *u, browser["clips_per_unit"])
                  for u in units[UNIT].itertuples(index=False)}
        curves = read_attributions(attributions, segments, sorted({c for ids in chosen.values() for c in ids}),
                                   units[UNIT])
    for _, unit in units.iterrows():
        key = (unit["site"], int(unit["layer"]), int(unit["neuron"]))
        label = unit_label(*key)
        panels = factor_panels(matrix.values[:, matrix.column(*key)], meta, spec, f"{label}: activation by factor")
        sections = clip_sections(clips, chosen[key], unit_rows(curves, *key), root, spec, prosody)
        articles.append(unit_article(label, unit_numbers(unit, spec, selectivity, probes, knockout), panels,
                                     sections))
    return browser_page(
        f"Unit browser: {len(units)} selected units", f"The strongest top units for {spec.target} "
        f"({combination}): activation by factor, selectivity, probe and knock-out numbers of the unit's "
        "layer, and the clips on which it is most active with their attribution curves.", articles)
