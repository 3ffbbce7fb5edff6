"""Figures (seaborn/matplotlib): the original guide's per-clip plot, comparisons by the corpus's factors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from speechneurons.datasets.spec import CorpusSpec  # noqa: E402
from speechneurons.schemas import UNIT, unit_rows  # noqa: E402

#: below this many observations per level, a level shows its points and their mean, not a box
FEW = 5

#: the temporal profiles draw a level's band where a bin holds at least this many speakers
BANDED_SPEAKERS = 3

#: what an attribution is measured in: original minus ablated pooled activation of the unit
ATTRIBUTION_UNIT = "change in the unit's pooled activation"


def clip_caption(clip: pd.Series, spec: CorpusSpec) -> str:
    """The clip's factors in the spec's order, each with its name: ``<factor> <level>, ...``."""
    return ", ".join(f"{f} {clip[f]}" for f in spec.factor_names)


def _wrapped(title: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(title, width))


def _by_level(ax: plt.Axes, data: pd.DataFrame, x: str, y: str, order: list, hue: str | None,
              hue_order: list | None) -> None:
    """Values by level: a box per level with its points over it, or, where a level has fewer than
    FEW values, only the points and a bar at their mean; tick labels give each level's n."""
    counts = data.groupby(x)[y].count().reindex(order, fill_value=0)
    if counts.min() >= FEW:
        sns.boxplot(data=data, x=x, y=y, order=order, color="0.9", showfliers=False, ax=ax)
    else:
        means = data.groupby(x)[y].mean().reindex(order)
        ax.scatter(range(len(order)), means, marker="_", s=900, color="0.3", zorder=3,
                   label="mean")
    sns.stripplot(data=data, x=x, y=y, order=order, hue=hue, hue_order=hue_order, dodge=False,
                  size=5, ax=ax, legend=bool(hue))
    ax.set_xticks(range(len(order)), [f"{level}\n(n={counts[level]})" for level in order])


def _nothing_at(ax: plt.Axes, text: str) -> None:
    """A panel with nothing to draw: its axes hidden, the reason written in it."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, f"not drawn:\n{text}", ha="center", va="center", fontsize=9, wrap=True,
            transform=ax.transAxes)


def _present(spec: CorpusSpec, factor: str, values) -> list:
    """The levels of ``factor`` found in ``values``, in the spec's order."""
    found = set(values)
    return [level for level in spec.levels(factor) if level in found]


def _hue(spec: CorpusSpec, data: pd.DataFrame) -> tuple[str | None, list | None]:
    """The group factor and its present levels, to colour points by (None when absent)."""
    if spec.group is None or spec.group not in data or data[spec.group].nunique() < 1:
        return None, None
    return spec.group, _present(spec, spec.group, data[spec.group].dropna())


def not_drawn(what: str, reason: str) -> plt.Figure:
    """A figure that says, in the report, why ``what`` could not be drawn."""
    fig, ax = plt.subplots(figsize=(8, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{what}: not drawn\n{reason}", ha="center", va="center", wrap=True,
            fontsize=11, transform=ax.transAxes)
    return fig


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
    rows = unit_rows(table, site, lay, neu)
    if clip_id is not None:
        if clip_id not in set(rows["clip_id"]):
            raise KeyError(f"figures.clip_id={clip_id!r}: not among the ablated clips")
        chosen = clip_id
    else:
        chosen = rows.loc[rows["abs_mass"].idxmax(), "clip_id"]
    return str(chosen), str(site), int(lay), int(neu)


def save_figure(fig: plt.Figure, png: str | Path, metadata: dict | None = None) -> Path:
    """Write ``png`` (for the report) and a PDF beside it (for papers); close the figure."""
    png = Path(png)
    fig.savefig(png, dpi=120, metadata=metadata)
    pdf_metadata = {"Subject": metadata.get("Description", "")} if metadata else None
    fig.savefig(png.with_suffix(".pdf"), metadata=pdf_metadata)
    plt.close(fig)
    return png.with_suffix(".pdf")


def _bars(ax: plt.Axes, curve: pd.DataFrame, colour_by_sign: bool = True, **kwargs) -> None:
    starts = curve["start_s"].to_numpy()
    widths = (curve["end_s"] - curve["start_s"]).to_numpy()
    values = curve["attribution"].to_numpy()
    colours = np.where(values >= 0, "tab:red", "tab:blue") if colour_by_sign else None
    ax.bar(starts, values, width=widths, align="edge", color=colours, **kwargs)
    ax.axhline(0, color="0.5", lw=0.5)


def clip_figure_units(selected: pd.DataFrame, site: str, layer: int, neuron: int, target: str,
                      level, most: int = 3) -> pd.DataFrame:
    """The units of the per-clip figure: the example unit, then the strongest top units of the
    clip's ``level`` of the ``target`` factor (site, layer, neuron; at most ``most``)."""
    peers = (selected[(selected["reason"] == "top_k") & (selected[target] == level)]
             .sort_values("score", ascending=False)[["site", "layer", "neuron"]])
    units = pd.concat([pd.DataFrame({"site": [site], "layer": [layer], "neuron": [neuron]}), peers])
    return units.drop_duplicates().head(most).astype({"layer": "int32", "neuron": "int32"})


def voicing_and_f0(ax: plt.Axes, track: pd.DataFrame | None) -> plt.Axes | None:
    """Shade ``ax`` where Praat found voicing and draw F0 (Hz) on a twin axis at the right; the
    twin, or None without a ``track`` (a clip whose prosody failed)."""
    if track is None or track.empty:
        return None
    starts, ends = track["start_s"].to_numpy(float), track["end_s"].to_numpy(float)
    voiced = track["voiced"].to_numpy(bool)
    for first, last in zip(np.flatnonzero(voiced & ~np.r_[False, voiced[:-1]]),
                           np.flatnonzero(voiced & ~np.r_[voiced[1:], False])):
        ax.axvspan(starts[first], ends[last], color="tab:green", alpha=0.08, lw=0)
    twin = ax.twinx()
    twin.plot((starts + ends) / 2, track["f0_hz"].to_numpy(float), color="tab:green", lw=1.2)
    twin.set_ylabel("F0 (Hz)", color="tab:green", fontsize=8)
    twin.tick_params(axis="y", colors="tab:green", labelsize=7)
    return twin


def plot_clip_attribution(
    waveform: np.ndarray, sample_rate: int, curves: dict[str, pd.DataFrame], title: str,
    track: pd.DataFrame | None = None,
) -> plt.Figure:
    """The original guide's per-clip plot, improved: waveform, spectrogram and attribution curves.

    ``curves`` maps a unit label to its per-segment curve (start_s, end_s,
    attribution) on this clip; one panel per unit, all on one time axis.
    With the clip's prosody ``track``, each curve panel is shaded where Praat
    found voicing and carries the F0 contour (Hz, right axis).
    """
    n = len(curves)
    fig, axes = plt.subplots(2 + n, 1, figsize=(10, 3.2 + 1.6 * n), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1.3] + [1] * n})
    t = np.arange(len(waveform)) / sample_rate
    axes[0].plot(t, waveform, lw=0.5, color="0.25")
    axes[0].set_ylabel("amplitude\n(full scale 1)")
    axes[0].set_title(title)
    axes[1].specgram(waveform, NFFT=512, Fs=sample_rate, noverlap=384, cmap="magma",
                     scale="dB", vmin=-120)
    axes[1].set_ylim(0, 8000)
    axes[1].set_ylabel("Hz")
    for ax, (label, curve) in zip(axes[2:], curves.items()):
        voicing_and_f0(ax, track)
        _bars(ax, curve)
        ax.set_ylabel("attribution\n(\u0394 activation)", fontsize=8)
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def plot_clip_panels(items: list[tuple[str, np.ndarray, pd.DataFrame]], sample_rate: int,
                        title: str) -> plt.Figure:
    """Several clips side by side (the original guide's --compare): one row per (label, waveform, curve)."""
    fig, axes = plt.subplots(len(items), 1, figsize=(10, 1.9 * len(items) + 0.6), squeeze=False)
    for ax, (label, waveform, curve) in zip(axes[:, 0], items):
        t = np.arange(len(waveform)) / sample_rate
        ax.plot(t, waveform / (np.abs(waveform).max() or 1), lw=0.4, color="0.75")
        ax.set_yticks([])
        twin = ax.twinx()
        _bars(twin, curve)
        twin.set_ylabel("attribution\n(\u0394 activation)", fontsize=8)
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_example_clip(clip_id: str, clip: pd.Series, units: pd.DataFrame, attributions: pd.DataFrame,
                      waveform: np.ndarray, sample_rate: int, spec: CorpusSpec,
                      track: pd.DataFrame | None = None) -> plt.Figure:
    """The per-clip figure: ``waveform`` with the attribution curve of each of ``units`` (site,
    layer, neuron) from the long ``attributions`` of the clip, over its voicing and F0 (``track``)."""
    curves = {unit_label(*u): unit_rows(attributions, *u).sort_values("segment")
              for u in units[UNIT].itertuples(index=False)}
    return plot_clip_attribution(waveform, sample_rate, curves, f"{clip_id} ({clip_caption(clip, spec)})",
                                 track)


def plot_level_comparison(clip_units: pd.DataFrame, spec: CorpusSpec, title: str) -> plt.Figure:
    """Per-clip total attribution of one unit by level of the target factor, points coloured by
    the group factor."""
    target = spec.target
    order = _present(spec, target, clip_units[target])
    hue, hue_order = _hue(spec, clip_units)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _by_level(ax, clip_units, target, "total", order, hue, hue_order)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_ylabel(f"total attribution per clip\n({ATTRIBUTION_UNIT})")
    ax.set_xlabel(f"{target} (n: clips)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_selectivity_heatmap(selectivity: pd.DataFrame, selected: pd.DataFrame,
                             spec: CorpusSpec) -> plt.Figure:
    """Layer x target level: share of units selective for the target factor and preferring each
    level; and the mean score (speaker-level d) of each layer's top units per level."""
    target = spec.target
    rows = selectivity[selectivity["factor"] == target].copy()
    if rows.empty:
        return not_drawn(f"layer x {target} selectivity", f"the clips hold fewer than two levels of "
                         f"{target}, so no unit's {target} selectivity could be tested")
    rows["row"] = rows["site"] + " " + rows["layer"].astype(str)
    order_rows = (rows[["site", "layer", "row"]].drop_duplicates()
                  .sort_values(["site", "layer"], ascending=[False, True])["row"].tolist())
    levels = [level for level in spec.levels(target) if str(level) in set(rows["preferred_level"])]
    units = rows.groupby("row").size()
    chosen = rows[rows["selective"]]
    share = (chosen.groupby(["row", "preferred_level"]).size().unstack(fill_value=0)
             .reindex(index=order_rows, columns=list(map(str, levels)), fill_value=0)
             .div(units.reindex(order_rows), axis=0))
    top = selected[selected["reason"] == "top_k"].copy()
    top["row"] = top["site"] + " " + top["layer"].astype(str)
    strength = (top.groupby(["row", target])["score"].mean().unstack()
                .reindex(index=order_rows, columns=levels))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.32 * len(order_rows) + 2.2))
    sns.heatmap(share, ax=axes[0], cmap="viridis", vmin=0, vmax=max(float(share.max().max()), 0.05),
                annot=len(order_rows) <= 30, fmt=".2f", cbar_kws={"label": "share of the layer's units"})
    none = "" if float(share.max().max()) > 0 else " \u2014 none at any layer"
    axes[0].set_title(f"{target}-selective units (speaker-general q and p_perm < alpha),\n"
                      f"by preferred {target}{none}")
    sns.heatmap(strength, ax=axes[1], cmap="rocket_r", annot=len(order_rows) <= 30, fmt=".2f",
                cbar_kws={"label": "speaker-level d"})
    axes[1].set_title("mean speaker-level d of each layer's top units")
    for ax in axes:
        ax.set_xlabel(target)
        ax.set_ylabel("site, layer")
    fig.tight_layout()
    return fig


def plot_unit_distributions(values: pd.DataFrame, spec: CorpusSpec, title: str) -> plt.Figure:
    """Per unit (panel), its pooled activation per clip by target level; columns unit, the
    target factor, the group factor (if any), value. Few clips per level: points and means."""
    target = spec.target
    if values.empty:
        return not_drawn(f"activation by {target} of the top units", "no top unit was selected "
                         f"(the clips hold fewer than two levels of {target})")
    order = _present(spec, target, values[target])
    hue, hue_order = _hue(spec, values)
    units = list(dict.fromkeys(values["unit"]))
    columns = min(4, len(units))
    rows = -(-len(units) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.8 * columns, 3.1 * rows + 0.6), squeeze=False,
                             layout="constrained")
    handles, labels = [], []  # of the points' colours, shown once beside the panels
    for ax, unit in zip(axes.flat, units):
        _by_level(ax, values[values["unit"] == unit], target, "value", order, hue, hue_order)
        ax.set_title(unit, fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelsize=7)
        if ax.get_legend() is not None:
            handles, labels = ax.get_legend_handles_labels()
            ax.get_legend().remove()
    for ax in axes.flat[len(units):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("pooled activation\n(model units)")
    if handles:
        fig.legend(handles, labels, title=hue, loc="outside right upper", frameon=False)
    fig.suptitle(f"{title} (n: clips)")
    return fig


def plot_temporal_profiles(profiles: pd.DataFrame, spec: CorpusSpec) -> plt.Figure:
    """Share of attribution over time per target level, four alignments (clip length, voicing onset
    and offset, pitch accents), 95 % logit bands over speakers (they stay in [0, 1]:
    :func:`speechneurons.stats.intervals.bounded_interval`)."""
    data = profiles[(profiles["site"] == "all")]
    if data.empty:
        return not_drawn("temporal profiles", "no attribution curve to profile")
    target = spec.target
    alignments = ["normalised", "onset", "offset", "accent"]
    titles = {"normalised": "clip length", "onset": "voicing onset", "offset": "voicing offset",
              "accent": "pitch accents"}
    fig, axes = plt.subplots(1, 4, figsize=(18, 4), sharey=True)
    levels = spec.levels(target)
    palette = dict(zip(levels, sns.color_palette("tab10" if len(levels) <= 10 else "husl", len(levels))))
    for ax, alignment in zip(axes, alignments):
        part = data[data["alignment"] == alignment]
        for level in _present(spec, target, part[target]):
            rows = part[part[target] == level].sort_values("bin")
            centre = (rows["bin_start"] + rows["bin_end"]) / 2
            ax.plot(centre, rows["mean_share"], color=palette[level],
                    label=f"{level} (n={int(rows['n_speakers'].max())} speakers)")
            banded = rows["n_speakers"] >= BANDED_SPEAKERS  # two speakers' band spans almost [0, 1]
            ax.fill_between(centre, rows["ci_low"].where(banded), rows["ci_high"].where(banded),
                            color=palette[level], alpha=0.15)
        if alignment != "normalised":
            ax.axvline(0, color="0.5", lw=0.6, ls="--")
        ax.set_xlabel(part["bin_unit"].iloc[0] if len(part) else alignment)
        ax.set_title(f"aligned to {titles[alignment]}")
    axes[0].set_ylabel("share of |attribution| per bin")
    drawn = data["ci_high"].where(data["n_speakers"] >= BANDED_SPEAKERS)
    top = np.nanmax([0.05, *data["mean_share"], *drawn])
    axes[0].set_ylim(0, min(1.0, float(top) * 1.05))
    axes[0].legend(fontsize=8, frameon=False)
    thin = bool((data["n_speakers"] < BANDED_SPEAKERS).any())
    if thin:
        fig.text(0.5, 0.01, f"95 % bands drawn where a bin holds at least {BANDED_SPEAKERS} speakers of "
                 "the level (temporal_profiles.parquet holds every band)", ha="center", fontsize=8,
                 color="0.3")
    fig.tight_layout(rect=(0, 0.05 if thin else 0, 1, 1))
    return fig


def plot_contrast(table: pd.DataFrame, x: str, y: str, significant: pd.Series, title: str,
                  xlabel: str, ylabel: str) -> plt.Figure:
    """One point per unit: activation effect (x) against attribution effect (y)."""
    if table.empty or table[[x, y]].isna().all().all():
        return not_drawn(title, "the contrast needs both of its groups, with two speakers or "
                         "pairs in each; the clips do not hold them")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    data = table.assign(significant=np.where(significant.fillna(False), "q < alpha", "n.s."))
    sns.scatterplot(data=data, x=x, y=y, hue="site", style="significant",
                    style_order=["n.s.", "q < alpha"], ax=ax, s=40)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.axvline(0, color="0.5", lw=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    drawn = int(data[[x, y]].notna().all(axis=1).sum())
    missing = f"; {len(data) - drawn} more without both effects (too few speakers)" if drawn < len(data) else ""
    ax.set_title(_wrapped(f"{title}, n={drawn} units{missing}", 60), fontsize=10)
    fig.tight_layout()
    return fig


def plot_group_contrasts(groups: pd.DataFrame, spec: CorpusSpec, alpha: float,
                         unanswered: str | None = None) -> plt.Figure:
    """Question 4: per tested unit, the group factor's activation d against its attribution d
    (held-out speakers as replicates); ``unanswered``: why the table is empty, drawn instead."""
    if unanswered:
        return not_drawn("question 4, group differences", unanswered)
    contrast = groups["contrast"].iloc[0] if len(groups) else "group contrast"
    return plot_contrast(groups, "activation_d", "attribution_d",
                         (groups["attribution_q"] < alpha) | (groups["activation_q"] < alpha),
                         f"{spec.group}: {contrast}, per tested unit (held-out speakers as replicates)",
                         "activation: Cohen's d over speakers", "attribution: Cohen's d over speakers")


def plot_graded_effects(graded: pd.DataFrame, spec: CorpusSpec, alpha: float,
                        unanswered: str | None = None) -> plt.Figure:
    """Question 5: per tested unit, the graded factor's paired d_z of activation against that of
    attribution (one row per measure in ``graded``, pivoted here); ``unanswered``: drawn instead."""
    if unanswered:
        return not_drawn("question 5, graded effects", unanswered)
    wide = graded.pivot_table(index=["fold", "site", "layer", "neuron"], columns="measure",
                              values=["dz", "q"]).reset_index()
    wide.columns = ["_".join(c for c in col if c) for col in wide.columns]
    for column in ["dz_activation", "dz_attribution", "q_activation", "q_attribution"]:
        if column not in wide:
            wide[column] = float("nan")
    factor, low, high = spec.graded
    pairing = ", ".join(["speaker", *[f for f in spec.within() if f != factor]])
    return plot_contrast(wide, "dz_activation", "dz_attribution",
                         (wide["q_attribution"] < alpha) | (wide["q_activation"] < alpha),
                         f"{factor}: {high} - {low}, paired within {pairing}",
                         "activation: d_z over speakers", "attribution: d_z over speakers")


def plot_cross_model(layers: pd.DataFrame) -> plt.Figure:
    """Per factor (column): share of selective units (top) and median eta2 (bottom) by layer,
    one line per model and site. ``layers``: layer_specialisation rows with a ``model`` column."""
    if layers.empty:
        return not_drawn("models compared by layer", "no model has a selectivity table with rows")
    factors = list(dict.fromkeys(layers["factor"]))
    fig, axes = plt.subplots(2, len(factors), figsize=(3.6 * len(factors), 6), squeeze=False,
                             sharex=True, sharey="row")
    for column, factor in enumerate(factors):
        part = layers[layers["factor"] == factor]
        for row, (measure, label) in enumerate([("share_selective", "share of units selective"),
                                                ("median_eta2", "median eta squared")]):
            ax = axes[row, column]
            sns.lineplot(data=part, x="layer", y=measure, hue="model", style="site", markers=True,
                         ax=ax, legend=(row == 0 and column == len(factors) - 1))
            ax.set_ylabel(label if column == 0 else "")
            ax.set_title(factor if row == 0 else "")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_ylim(0, max(0.05, float(layers[measure].max()) * 1.1))
            if measure == "share_selective" and not (part[measure] > 0).any():
                ax.text(0.5, 0.5, "no unit selective\nat any layer", ha="center", va="center",
                        fontsize=9, color="0.3", transform=ax.transAxes)
    handles = axes[0, -1].get_legend()
    if handles is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    return fig


def _accuracy_line(ax: plt.Axes, rows: pd.DataFrame, colour: str, label: str, offset: float = 0.0
                   ) -> pd.DataFrame:
    """One probe curve: balanced accuracy by layer with its 95 % band; returns the rows by layer.
    A single layer (an SAE's site) gets a point with an error bar, ``offset`` from the layer."""
    rows = rows.sort_values("layer")
    if len(rows) == 1:
        accuracy = rows["balanced_accuracy"].to_numpy(float)
        error = np.abs(np.vstack([accuracy - rows["ci_low"].to_numpy(float),
                                  rows["ci_high"].to_numpy(float) - accuracy]))
        ax.errorbar(rows["layer"] + offset, accuracy, yerr=np.nan_to_num(error), marker="o", color=colour,
                    label=label, capsize=3)
        return rows
    ax.plot(rows["layer"], rows["balanced_accuracy"], marker="o", color=colour, label=label)
    ax.fill_between(rows["layer"], rows["ci_low"], rows["ci_high"], color=colour, alpha=0.15)
    return rows


def plot_probes(probes: pd.DataFrame) -> plt.Figure:
    """Held-out-speaker balanced accuracy by layer, a line per factor (and the speaker control),
    95 % logit bands over folds (inside [0, 1]), chance dashed; one panel per site."""
    if probes.empty:
        return not_drawn("probes by layer", "no factor could be probed (see the problems page)")
    sites = list(dict.fromkeys(probes["site"]))
    fig, axes = plt.subplots(1, len(sites), figsize=(6.5 * len(sites), 4.2), squeeze=False, sharey=True)
    for ax, site in zip(axes[0], sites):
        part = probes[probes["site"] == site]
        lines = list(part.groupby("factor", sort=False))
        for i, (factor, rows) in enumerate(lines):
            offset = 0.08 * (i - (len(lines) - 1) / 2)
            rows = _accuracy_line(ax, rows, f"C{i}", factor, offset)
            if len(rows) == 1:  # one layer: chance as a tick beside its point
                ax.hlines(rows["chance"], rows["layer"] + offset - 0.04, rows["layer"] + offset + 0.04,
                          linestyles="--", lw=0.8, color=f"C{i}")
            else:
                ax.plot(rows["layer"], rows["chance"], ls="--", lw=0.8, color=f"C{i}")
        ax.set_xlabel(f"{site} layer")
        ax.set_ylim(0, 1)
        folds = part["n_folds"].dropna().astype(int)
        span = f"{folds.min()}" if folds.min() == folds.max() else f"{folds.min()}-{folds.max()}"
        ax.set_title(f"{site}: probes on held-out speakers, {span} folds (dashed: chance)", fontsize=10)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if part["layer"].nunique() == 1:
            ax.set_xticks(sorted(part["layer"].unique()))
            ax.set_xlim(part["layer"].min() - 0.5, part["layer"].max() + 0.5)
    axes[0, 0].set_ylabel("balanced accuracy")
    axes[0, -1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def plot_knockout(summary: pd.DataFrame, spec: CorpusSpec) -> plt.Figure:
    """Per knocked (site, layer) (panel, probed at that hidden layer): own-level recall loss of the
    selected units (hidden units, or SAE latents) and of matched random ones, per target level
    (the paired test is in knockout.parquet)."""
    if summary.empty:
        return not_drawn("knock-out", "no hidden-layer unit was selected for the target factor, so "
                         "nothing was knocked out")
    own = summary[summary["probe_layer"] == summary["layer"]]
    losses = own[["own_loss_selected", "own_loss_random"]].fillna(0).to_numpy()
    if not losses.any():
        return not_drawn("knock-out", "knocking out the selected units and the matched random units "
                         "changed no held-out prediction of the probe: every own-level recall loss is 0 "
                         "(knockout.parquet holds the rows)")
    panels = sorted({(int(r.layer), str(r.site)) for r in own.itertuples(index=False)})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False, sharey=True)
    for ax, (layer, site) in zip(axes[0], panels):
        rows = own[(own["layer"] == layer) & (own["site"] == site)]
        title = f"hidden layer {layer}" if site == "hidden" else f"SAE latents of layer {layer}"
        order = [str(v) for v in spec.levels(spec.target) if str(v) in set(rows["level"].astype(str))]
        rows = rows.set_index(rows["level"].astype(str)).loc[order]
        if not rows[["own_loss_selected", "own_loss_random"]].fillna(0).to_numpy().any():
            _nothing_at(ax, "no recall changed at this layer")
            ax.set_title(title)
            continue
        position = np.arange(len(order))
        ax.bar(position - 0.2, rows["own_loss_selected"], width=0.4, label="selected units")
        ax.bar(position + 0.2, rows["own_loss_random"], width=0.4, color="0.6", label="matched random")
        ax.set_xticks(position, order, rotation=45)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_title(title)
    axes[0, 0].set_ylabel(f"own-{spec.target} recall loss\n(recall before - after knock-out)")
    drawn = [ax for ax in axes[0] if ax.get_legend_handles_labels()[0]]
    drawn[-1].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_probes_by_model(probes: pd.DataFrame) -> plt.Figure:
    """Per factor (panel): held-out-speaker balanced accuracy by layer, one line per model (and
    site), 95 % bands over folds, chance dashed. ``probes``: probes rows with a ``model`` column."""
    if probes.empty:
        return not_drawn("probes compared across models", "no model has a probe table with rows")
    factors = list(dict.fromkeys(probes["factor"]))
    fig, axes = plt.subplots(1, len(factors), figsize=(3.8 * len(factors), 3.8), squeeze=False, sharey=True)
    for ax, factor in zip(axes[0], factors):
        part = probes[probes["factor"] == factor]
        for i, ((model, site), rows) in enumerate(part.groupby(["model", "site"], sort=False)):
            _accuracy_line(ax, rows, f"C{i}", f"{model} {site}")
        ax.plot(sorted(part["layer"].unique()), [part["chance"].iloc[0]] * part["layer"].nunique(), ls="--",
                color="0.4", lw=0.8)
        ax.set_title(factor, fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("balanced accuracy, held-out speakers")
    axes[0, -1].legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig
