"""How far to trust the SAE features: a figure of each layer's quality and a page of sentences.

Per layer (:data:`~speechneurons.sae.QUALITY_COLUMNS`): the fraction of the
held-out speakers' variance the SAE explains, its L0, its dead and dense
latents, and the share of its latents that a second seed finds again.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from speechneurons.figures import not_drawn  # noqa: E402
from speechneurons.pages import render  # noqa: E402

#: The page's template (speechneurons/templates/).
TEMPLATE = "findings.html"
#: Below this held-out FVE, or above these shares, a sentence warns.
LOW_FVE, MANY_DEAD, MANY_DENSE, FEW_STABLE = 0.7, 0.2, 0.05, 0.5

PANELS = [("fve", "variance explained (held-out speakers)"), ("l0", "active latents per frame (L0)"),
          ("dead_share", "share of dead latents"), ("dense_share", "share of dense latents (> 10 % of frames)"),
          ("stable_share", "share found again by a second seed")]


def plot_sae_quality(table: pd.DataFrame) -> plt.Figure:
    """One panel per quality number, one bar per (site, layer); a figure saying so when no layer
    was trained."""
    if table.empty:
        return not_drawn("SAE quality", "no layer's SAE was trained (the page and the problems page say why)")
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.2 * len(PANELS), 3.4))
    labels = [f"{s} {int(k)}" for s, k in zip(table["site"], table["layer"])]
    for ax, (column, title) in zip(axes, PANELS):
        ax.bar(labels, table[column], color="tab:purple")
        ax.set_title(title, fontsize=9)
        if column != "l0":
            ax.set_ylim(0, 1)
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle("Sparse-autoencoder features: how far to trust them", fontsize=11)
    fig.tight_layout()
    return fig


def sae_findings(table: pd.DataFrame) -> list[tuple[str, str]]:
    """A sentence per layer: its numbers, and a warning where one is outside the usual range."""
    items = []
    for row in table.itertuples(index=False):
        warnings = [text for flag, text in (
            (row.fve < LOW_FVE, f"it explains less than {LOW_FVE:.0%} of the held-out variance, so its "
                                 "features leave much of the layer out"),
            (row.dead_share > MANY_DEAD, f"{row.dead_share:.0%} of its latents are dead (a smaller "
                                          "dictionary would do)"),
            (row.dense_share > MANY_DENSE, f"{row.dense_share:.0%} of its latents fire on more than a "
                                            "tenth of the frames (dense features are rarely interpretable)"),
            (row.stable_share < FEW_STABLE, f"a second seed finds only {row.stable_share:.0%} of its latents "
                                             "again: single features are seed-specific"),
        ) if flag]
        items.append((f"{row.site} layer {int(row.layer)}", (
            f"{int(row.latents)} latents, k = {int(row.k)}, trained on {int(row.train_speakers)} speakers' "
            f"{int(row.train_frames):,} frames and judged on {int(row.held_out_speakers)} other speakers' "
            f"{int(row.held_out_frames):,}: it explains {row.fve:.1%} of their variance with {row.l0:.1f} active "
            f"latents a frame; dead {row.dead_share:.1%}, dense {row.dense_share:.1%}; {row.stable_share:.0%} of "
            f"its latents are found again by a second seed (median decoder cosine {row.median_seed_cosine:.2f}). "
            + ("Caution: " + "; ".join(warnings) + "." if warnings else "No number is outside the usual range."))))
    return items


def sae_page(title: str, items: list[tuple[str, str]], notes: list[str]) -> str:
    """The page (every value escaped: :func:`speechneurons.pages.render`); ``notes``: the layers not
    trained, and why."""
    return render(TEMPLATE, title=title, items=items, notes=notes, preamble=(
        "Each layer's sparse autoencoder (TopK, Gao et al. 2024), judged on the frames of speakers it was "
        "not trained on; stability: latents of two seeds matched one to one by decoder cosine (above 0.7 "
        "counts as found again)."), footer="Table: tables/sae_quality.parquet; methods: docs/features.md.")
