"""Question 3 with prosody in the report: a figure per layer and measure, and a page of sentences.

The figure draws, per acoustic measure, each layer's group of tested units
(:func:`~speechneurons.unit_prosody.layer_table`): mean Spearman rho of
attribution with the measure over held-out speakers, with its 95 %
interval, one colour per level of the target factor the units were chosen
for (random controls in grey). The page says each finding in a sentence:
every (layer, level, measure) whose group test has q below the study's
alpha, and the share of units that follow each measure on their own.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from speechneurons.pages import render  # noqa: E402
from speechneurons.prosody import MEASURE_LABELS, MEASURES  # noqa: E402

#: The page's template (speechneurons/templates/).
TEMPLATE = "findings.html"
#: What the controls are called in ``chosen_for``.
CONTROLS = ("random control", "explicit")


def _where(site: str, layer) -> str:
    return f"{site} {int(layer)}"


def plot_prosody(layers: pd.DataFrame, target: str, alpha: float) -> plt.Figure:
    """One panel per measure: mean rho and 95 % interval per (site, layer) and chosen_for; a filled
    marker where q < ``alpha``, a hollow one elsewhere. A table without rows gives a figure saying so."""
    if layers.empty:
        fig, ax = plt.subplots(figsize=(8, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No tested unit has a prosody test (no cross-fitted, explicit or random unit\n"
                "was ablated on clips with a prosody track)", ha="center", va="center")
        return fig
    data = layers.assign(where=[_where(s, k) for s, k in zip(layers["site"], layers["layer"])])
    order = list(dict.fromkeys(data.sort_values(["site", "layer"])["where"]))
    groups = sorted(set(data["chosen_for"]) - set(CONTROLS)) + [g for g in CONTROLS if g in set(data["chosen_for"])]
    colours = dict(zip(groups, plt.get_cmap("tab10").colors))
    colours.update({"random control": "grey", "explicit": "black"})
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), sharex=True)
    width = 0.8 / max(1, len(groups))
    for ax, measure in zip(axes.ravel(), MEASURES):
        rows = data[data["measure"] == measure]
        for g, group in enumerate(groups):
            part = rows[rows["chosen_for"] == group]
            if part.empty:
                continue
            x = np.array([order.index(w) for w in part["where"]]) - 0.4 + width * (g + 0.5)
            y = part["mean_rho"].to_numpy(float)
            error = np.vstack([y - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - y])
            ax.errorbar(x, y, yerr=np.nan_to_num(error), fmt="none", ecolor=colours[group], lw=1)
            significant = (part["q"] < alpha).to_numpy()
            ax.scatter(x[significant], y[significant], color=colours[group], s=28, zorder=3)
            ax.scatter(x[~significant], y[~significant], facecolor="white", edgecolor=colours[group], s=28,
                       zorder=3)
        ax.axhline(0, color="grey", lw=0.8, ls=":")
        ax.set(title=MEASURE_LABELS[measure], ylabel="mean Spearman rho (held-out speakers)")
        ax.set_xticks(range(len(order)), order, rotation=45)
    handles = [Line2D([], [], marker="o", ls="none", color=colours[g], label=g) for g in groups]
    handles.append(Line2D([], [], marker="o", ls="none", markerfacecolor="white", markeredgecolor="0.3",
                          label=f"hollow: q >= {alpha:g}"))
    fig.legend(handles=handles, title=f"units chosen for ({target})", loc="center right")
    fig.suptitle("Which measures the units' attributions follow: per layer, 95 % intervals over speakers; "
                 f"filled: q < {alpha:g}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.88, 0.96))
    return fig


def _rho(row) -> str:
    return f"rho {row.mean_rho:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"


def findings(layers: pd.DataFrame, units: pd.DataFrame, target: str, alpha: float) -> list[tuple[str, str]]:
    """(heading, sentence) per finding: each (layer, level, measure) group whose test has q <
    ``alpha`` (strongest first; with whether it survives holding intensity fixed), then per measure
    the share of tested units that follow it on their own; a sentence saying so when nothing
    reaches q < ``alpha``."""
    items = []
    found = layers[layers["q"] < alpha].sort_values("p")
    for row in found.itertuples(index=False):
        whom = ("random control units" if row.chosen_for == "random control" else "explicit units"
                if row.chosen_for == "explicit" else f"units chosen for {target} {row.chosen_for}")
        direction = "higher" if row.mean_rho > 0 else "lower"
        held = ("" if row.measure == "intensity_db" or not np.isfinite(row.partial_rho) else
                f" With intensity held fixed: rho {row.partial_rho:+.2f}, q = {row.partial_q:.3g}"
                f"{'' if row.partial_q < alpha else ' (not significant: loudness may carry it)'}.")
        items.append((f"{_where(row.site, row.layer)}, {row.chosen_for}: {MEASURE_LABELS[row.measure]}",
                      f"In {_where(row.site, row.layer)}, the attributions of {whom} are larger where "
                      f"{MEASURE_LABELS[row.measure]} is {direction}: {_rho(row)} over {row.n_speakers} "
                      f"{'speakers' if row.chosen_for in CONTROLS else 'held-out speakers'}, q = {row.q:.3g}; "
                      f"{row.n_following} of {row.n_units} units "
                      f"follow it on their own.{held}"))
    if found.empty:
        best = layers.sort_values("p").head(1)
        tail = (f" The strongest was {MEASURE_LABELS[best['measure'].iloc[0]]} in "
                f"{_where(best['site'].iloc[0], best['layer'].iloc[0])} ({best['chosen_for'].iloc[0]}): "
                f"{_rho(next(best.itertuples(index=False)))}, q = {best['q'].iloc[0]:.3g}."
                if len(best) and np.isfinite(best["p"].iloc[0]) else "")
        items.append(("No layer follows a measure", f"No group of units follows any acoustic measure at "
                      f"q < {alpha:g}.{tail}"))
    if not units.empty:
        for measure, rows in units.groupby("measure", sort=False):
            items.append((f"Units that follow {MEASURE_LABELS[measure]}",
                          f"{int(rows['follows'].sum())} of {len(rows)} tested units follow "
                          f"{MEASURE_LABELS[measure]} at q < {alpha:g} "
                          f"({int((rows['follows'] & (rows['mean_rho'] > 0)).sum())} larger where it is higher)."))
    return items


def prosody_page(title: str, items: list[tuple[str, str]], notes: list[str]) -> str:
    """The page (every value escaped: :func:`speechneurons.pages.render`)."""
    return render(TEMPLATE, title=title, items=items, notes=notes, preamble=(
        "Spearman rho between a unit's attribution per segment and the segment's acoustic measure (Praat), "
        "within each clip; Fisher z averaged per speaker and tested over the speakers that did not choose the "
        "units (t-test, 95 % interval); q: Benjamini-Hochberg."), footer=(
        "Tables: prosody_units.parquet and prosody_layers.parquet in this combination's tables folder; "
        "methods and limits: docs/questions.md."))
