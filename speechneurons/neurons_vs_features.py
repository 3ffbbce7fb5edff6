"""Neurons against sparse-autoencoder features, side by side: per SAE layer and factor, the share
of speaker-general selective units, the held-out-speaker accuracy of a probe on the top-k units,
and the knock-out cost, for the layer's own units (``sae.site``) and for its SAE's latents.

- **Share selective**: the share of the (site, layer)'s units that the speaker-general test
  calls selective for the factor (``selectivity.parquet``'s ``selective``: q below
  ``stats.fdr_alpha`` under speaker intercepts and speaker x factor slopes), with a Wilson
  interval, and the difference latents - neurons with Newcombe's hybrid score interval
  (statsmodels). The units are not independent draws, so the intervals describe this layer's
  units, not a population of layers.
- **Top-k probe**: per outer fold of speakers (:func:`speechneurons.probes.speaker_folds`, no
  speaker on both sides), the ``top_k`` units of each kind are ranked on the fold's *training*
  speakers by the speaker-level F of the factor (:func:`speechneurons.stats.selectivity.ranking_f`),
  a ridge probe on them (penalty chosen by inner grouped CV on the training speakers) is
  scored on the held-out speakers: balanced accuracy, mean over folds with a 95 % interval,
  and the paired difference latents - neurons over folds with a t interval. No unit is chosen
  on the speakers it is scored on.
- **Knock-out cost**: from ``knockout.parquet`` (the cross-fitted units of each target level
  knocked out on held-out speakers, probed at the same hidden layer): the own-level recall
  loss of the selected units minus that of matched random units, averaged over levels; its
  paired test per level is in ``knockout.parquet``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint  # noqa: E402

from speechneurons.cache import ActivationMatrix  # noqa: E402
from speechneurons.figures import not_drawn  # noqa: E402
from speechneurons.datasets.spec import SPEAKER, CorpusSpec  # noqa: E402
from speechneurons.probes import ProbeSettings, fit_probe, score, speaker_folds  # noqa: E402
from speechneurons.stats.intervals import bounded_interval, t_interval  # noqa: E402
from speechneurons.stats.selectivity import ranking_f  # noqa: E402

COLUMNS = ["site", "layer", "factor", "measure", "neurons", "neurons_low", "neurons_high", "latents",
           "latents_low", "latents_high", "difference", "difference_low", "difference_high", "n_neurons",
           "n_latents", "top_k", "n_folds", "chance"]
SHARE = "share selective"
PROBE = "top-k probe accuracy"
KNOCKOUT = "knock-out own-level recall loss, selected - random"
MEASURES = (SHARE, PROBE, KNOCKOUT)


def share_rows(selectivity: pd.DataFrame, site: str, layer: int) -> list[dict]:
    """Per factor: the share of (site, layer)'s units and of (sae, layer)'s latents that are
    speaker-general selective, Wilson intervals, and the difference with Newcombe's interval."""
    rows = []
    for factor, part in selectivity.groupby("factor", sort=False):
        kinds = [part[(part["site"] == s) & (part["layer"] == layer)]["selective"].fillna(False)
                 for s in (site, "sae")]
        if any(len(k) == 0 for k in kinds):
            continue
        (hits_n, n_n), (hits_l, n_l) = [(int(k.sum()), len(k)) for k in kinds]
        low_n, high_n = proportion_confint(hits_n, n_n, method="wilson")
        low_l, high_l = proportion_confint(hits_l, n_l, method="wilson")
        low_d, high_d = confint_proportions_2indep(hits_l, n_l, hits_n, n_n, method="newcomb")
        rows.append({"site": site, "layer": layer, "factor": str(factor), "measure": SHARE,
                     "neurons": hits_n / n_n, "neurons_low": low_n, "neurons_high": high_n,
                     "latents": hits_l / n_l, "latents_low": low_l, "latents_high": high_l,
                     "difference": hits_l / n_l - hits_n / n_n, "difference_low": low_d, "difference_high": high_d,
                     "n_neurons": n_n, "n_latents": n_l, "top_k": np.nan, "n_folds": np.nan, "chance": np.nan})
    return rows


def top_units(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, factor: str, k: int) -> np.ndarray:
    """The columns of x [clips, units] with the ``k`` largest speaker-level F of ``factor`` on
    these clips (ties and undefined F last, in column order)."""
    f = np.nan_to_num(ranking_f(x, meta, spec, factor), nan=-np.inf)
    return np.argsort(-f, kind="stable")[:k]


def top_k_probe(kinds: dict[str, np.ndarray], meta: pd.DataFrame, spec: CorpusSpec, factor: str, k: int,
                settings: ProbeSettings, seed: int) -> dict[str, np.ndarray]:
    """Per kind (name -> x [clips, units]), the held-out balanced accuracy of each outer fold
    [folds] of a probe on the kind's top-``k`` units, ranked on the fold's training speakers."""
    known = meta[factor].notna().to_numpy()
    meta = meta[known].reset_index(drop=True)
    labels, speakers = meta[factor].astype(str).to_numpy(), meta[SPEAKER].astype(str).to_numpy()
    within = spec.factor(factor).varies == "within"
    folds = [(a, b) for a, b in speaker_folds(labels, speakers, settings.folds, within, seed)
             if len(np.unique(labels[a])) > 1]
    out = {name: np.full(len(folds), np.nan) for name in kinds}
    kinds = {name: x[known] for name, x in kinds.items()}  # the clips with a known level, once
    for j, (train, test) in enumerate(folds):
        for name, x in kinds.items():
            chosen = top_units(x[train], meta.iloc[train].reset_index(drop=True), spec, factor, k)
            probe = fit_probe(x[train][:, chosen], labels[train], speakers[train], within, settings, seed + j)
            out[name][j] = score(labels[test], probe.predict(x[test][:, chosen]))
    return out


def probe_rows(matrix: ActivationMatrix, clips: pd.DataFrame, spec: CorpusSpec, site: str, layer: int, k: int,
               settings: ProbeSettings) -> tuple[list[dict], list[str]]:
    """Per factor with two levels and two speakers: :func:`top_k_probe` of the layer's units
    against its latents (the same folds), and notes on the factors left out."""
    meta = clips.set_index("clip_id").loc[matrix.clip_ids].reset_index()
    kinds = {}
    for name, s in (("neurons", site), ("latents", "sae")):
        columns = matrix.units.index[(matrix.units["site"] == s) & (matrix.units["layer"] == layer)].to_numpy()
        kinds[name] = matrix.values[:, columns].astype(np.float64)
    rows, notes = [], []
    for i, factor in enumerate(spec.factor_names):
        known = meta[factor].notna()
        if meta.loc[known, factor].nunique() < 2 or meta.loc[known, SPEAKER].nunique() < 2:
            notes.append(f"neurons vs features: {factor} not probed (one level or one speaker)")
            continue
        scores = top_k_probe(kinds, meta, spec, factor, k, settings, settings.seed + 101 * i)
        if not len(scores["neurons"]):
            notes.append(f"neurons vs features: {factor} not probed (no fold's training speakers hold two levels)")
            continue
        difference = scores["latents"] - scores["neurons"]
        n_low, n_high = bounded_interval(scores["neurons"])
        l_low, l_high = bounded_interval(scores["latents"])
        d_low, d_high = t_interval(difference)
        rows.append({"site": site, "layer": layer, "factor": factor, "measure": PROBE,
                     "neurons": float(scores["neurons"].mean()), "neurons_low": n_low, "neurons_high": n_high,
                     "latents": float(scores["latents"].mean()), "latents_low": l_low, "latents_high": l_high,
                     "difference": float(difference.mean()), "difference_low": d_low, "difference_high": d_high,
                     "n_neurons": kinds["neurons"].shape[1], "n_latents": kinds["latents"].shape[1],
                     "top_k": min(k, kinds["neurons"].shape[1], kinds["latents"].shape[1]),
                     "n_folds": len(difference), "chance": 1.0 / meta.loc[known, factor].nunique()})
    return rows, notes


def knockout_rows(knockout: pd.DataFrame, spec: CorpusSpec, site: str, layer: int) -> list[dict]:
    """The knock-out's own-level recall loss of the selected minus the matched random units, at the
    knocked layer, averaged over target levels: hidden units against the SAE's latents."""
    if knockout.empty or site != "hidden":
        return []
    at = knockout[(knockout["layer"] == layer) & (knockout["probe_layer"] == layer)]
    cost = {kind: at[at["site"] == s] for kind, s in (("neurons", "hidden"), ("latents", "sae"))}
    if any(c.empty for c in cost.values()):
        return []
    value = {kind: float((c["own_loss_selected"] - c["own_loss_random"]).mean()) for kind, c in cost.items()}
    return [{"site": site, "layer": layer, "factor": spec.target, "measure": KNOCKOUT,
             "neurons": value["neurons"], "neurons_low": np.nan, "neurons_high": np.nan,
             "latents": value["latents"], "latents_low": np.nan, "latents_high": np.nan,
             "difference": value["latents"] - value["neurons"], "difference_low": np.nan,
             "difference_high": np.nan, "n_neurons": np.nan, "n_latents": np.nan, "top_k": np.nan,
             "n_folds": float(cost["neurons"]["n_folds"].min()), "chance": np.nan}]


def neurons_vs_features(matrix: ActivationMatrix, clips: pd.DataFrame, selectivity: pd.DataFrame,
                        knockout: pd.DataFrame, spec: CorpusSpec, site: str, layers: list[int], top_k: int,
                        settings: ProbeSettings) -> tuple[pd.DataFrame, list[str]]:
    """(the table, :data:`COLUMNS`, one row per (layer, factor, measure); notes) for every layer of
    ``layers`` that has latents in ``matrix`` (a layer whose SAE was not trained is noted)."""
    rows, notes = [], []
    have = set(matrix.units.loc[matrix.units["site"] == "sae", "layer"].astype(int))
    for layer in layers:
        if layer not in have:
            notes.append(f"neurons vs features: sae layer {layer} has no latents (its SAE was not trained)")
            continue
        rows += share_rows(selectivity, site, layer)
        found, why = probe_rows(matrix, clips, spec, site, layer, top_k, settings)
        rows += found
        notes += why
        rows += knockout_rows(knockout, spec, site, layer)
    return pd.DataFrame(rows, columns=COLUMNS), list(dict.fromkeys(notes))


def plot_neurons_vs_features(table: pd.DataFrame) -> plt.Figure:
    """One panel per measure: per (layer, factor), the neurons' and the latents' value side by
    side with their 95 % intervals (where there is one)."""
    if table.empty:
        return not_drawn("neurons vs features", "no SAE layer has latents in the activation cache")
    measures = [m for m in MEASURES if (table["measure"] == m).any()]
    fig, axes = plt.subplots(1, len(measures), figsize=(4.6 * len(measures), 4.2), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        rows = table[table["measure"] == measure].reset_index(drop=True)
        position = np.arange(len(rows))
        for offset, kind, colour, label in ((-0.2, "neurons", "C0", "the layer's neurons"),
                                            (0.2, "latents", "C1", "SAE latents")):
            values = rows[kind].to_numpy(float)
            error = np.abs(np.vstack([values - rows[f"{kind}_low"].to_numpy(float),
                                      rows[f"{kind}_high"].to_numpy(float) - values]))
            ax.bar(position + offset, values, width=0.4, color=colour, label=label,
                   yerr=None if np.isnan(error).all() else np.nan_to_num(error), capsize=3)
        ax.set_xticks(position, [f"L{r.layer} {r.factor}" for r in rows.itertuples(index=False)], rotation=45,
                      ha="right", fontsize=8)
        if measure == PROBE:  # chance, 1 / levels, per factor
            ax.hlines(rows["chance"], position - 0.45, position + 0.45, colors="0.3", linestyles="--", lw=1,
                      label="chance")
        ax.axhline(0, color="0.5", lw=0.5)
        ax.set_title(measure if measure != PROBE else f"{PROBE} (k = {int(rows['top_k'].max())})", fontsize=9)
        if measure != KNOCKOUT:
            ax.set_ylim(0, 1)
    for ax, measure in zip(axes[0], measures):
        if ax is axes[0, 0] or measure == PROBE:  # the kinds once, and chance where it is drawn
            ax.legend(fontsize=8, frameon=False)
    fig.suptitle("neurons vs SAE features (held-out speakers; 95 % intervals)", fontsize=10)
    fig.tight_layout()
    return fig
