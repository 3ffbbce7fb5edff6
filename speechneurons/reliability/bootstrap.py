"""Stability of the selected units over speakers: a speaker (cluster) bootstrap.

Speakers are drawn with replacement (within each level of the corpus's
between-speaker group factor, when it has one, so every resample keeps the
design's balance), every drawn speaker bringing all their clips. On each
resample the selection is redone as ``select_units`` does it: per (site,
layer) and target level, the top k units by one-vs-rest Cohen's d. Reported:
per (site, layer, level) the mean Jaccard index of the resampled top k with
the study's, and per selected unit the share of resamples that keep it and
the 2.5-97.5 % percentile interval of its d (Efron & Tibshirani 1993; Field
& Welsh 2007 for resampling clusters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.oneway import cohens_d


@dataclass(frozen=True)
class BootstrapSettings:
    """``reliability.bootstrap``; ``top_k`` is the selection's."""

    resamples: int = 200
    top_k: int = 4
    seed: int = 0


def resample_rows(meta: pd.DataFrame, spec: CorpusSpec, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one speaker bootstrap sample (stratified by the group factor when there is one)."""
    by_speaker = {s: np.flatnonzero(meta[SPEAKER].to_numpy() == s) for s in pd.unique(meta[SPEAKER])}
    speakers = meta.drop_duplicates(SPEAKER)
    strata = [speakers] if spec.group is None else [g for _, g in speakers.groupby(spec.group, dropna=False)]
    drawn = [rng.choice(s[SPEAKER].to_numpy(), size=len(s), replace=True) for s in strata]
    return np.concatenate([by_speaker[s] for s in np.concatenate(drawn)])


def top_units(x: np.ndarray, labels: np.ndarray, level, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(column indices of the top k by Cohen's d of ``level`` against the rest, d of every column)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = cohens_d(x, labels == level)
    return np.argsort(-np.nan_to_num(d, nan=-np.inf))[:k], d


def speaker_bootstrap(matrix: ActivationMatrix, clips: pd.DataFrame, selected: pd.DataFrame,
                      spec: CorpusSpec, settings: BootstrapSettings, progress: bool = True
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(per selected unit, per (site, layer, level), notes).

    Unit rows (the ``top_k`` rows of ``selected``): d (the study's),
    d_low/d_high (95 % percentile interval), kept (share of resamples in
    which the unit is still in its level's top k). Layer rows: mean_jaccard
    and its 2.5/97.5 % quantiles over resamples.
    """
    target = spec.target
    top = selected[selected["reason"] == "top_k"]
    notes = []
    unit_cols = ["site", "layer", "neuron", target, "d", "d_low", "d_high", "kept", "resamples"]
    layer_cols = ["site", "layer", target, "top_k", "mean_jaccard", "jaccard_low", "jaccard_high", "resamples"]
    if top.empty or settings.resamples < 1:
        notes.append("bootstrap: no top_k unit was selected, nothing to resample" if top.empty
                     else "bootstrap: reliability.bootstrap.resamples is 0")
        return pd.DataFrame(columns=unit_cols), pd.DataFrame(columns=layer_cols), notes
    meta = clips.set_index("clip_id").loc[matrix.clip_ids].reset_index()
    labels = meta[target].to_numpy()
    units = matrix.units.reset_index(drop=True)
    rng = np.random.default_rng(settings.seed)
    samples = [resample_rows(meta, spec, rng) for _ in range(settings.resamples)]
    unit_rows, layer_rows, skipped = [], [], []
    groups = list(top.groupby(["site", "layer"], sort=True))
    for (site, layer), chosen in tqdm(groups, desc="speaker bootstrap", unit="layer", disable=not progress):
        columns = units.index[(units["site"] == site) & (units["layer"] == layer)].to_numpy()
        neurons = units.loc[columns, "neuron"].to_numpy()
        x = matrix.values[:, columns]
        levels = list(pd.unique(chosen[target]))
        kept = {lv: np.zeros(len(neurons)) for lv in levels}
        ds = {lv: [] for lv in levels}
        jaccard = {lv: [] for lv in levels}
        study = {lv: set(chosen.loc[chosen[target] == lv, "neuron"]) for lv in levels}
        for rows in samples:
            for lv in levels:
                if len(set(labels[rows])) < 2 or (labels[rows] == lv).sum() < 2:
                    continue  # the resample lacks the level, or the rest: nothing to rank
                best, d = top_units(x[rows], labels[rows], lv, settings.top_k)
                picked = set(neurons[best])
                jaccard[lv].append(len(picked & study[lv]) / len(picked | study[lv]))
                kept[lv][best] += 1
                ds[lv].append(d)
        for lv in levels:
            n = len(jaccard[lv])
            draws = np.array(ds[lv]) if n else np.full((1, len(neurons)), np.nan)
            for neuron in sorted(study[lv]):
                col = int(np.flatnonzero(neurons == neuron)[0])
                row = chosen[(chosen[target] == lv) & (chosen["neuron"] == neuron)].iloc[0]
                unit_rows.append({"site": site, "layer": int(layer), "neuron": int(neuron), target: lv,
                                  "d": float(row["score"]),
                                  "d_low": float(np.nanpercentile(draws[:, col], 2.5)) if n else np.nan,
                                  "d_high": float(np.nanpercentile(draws[:, col], 97.5)) if n else np.nan,
                                  "kept": kept[lv][col] / n if n else np.nan, "resamples": n})
            j = np.array(jaccard[lv])
            layer_rows.append({"site": site, "layer": int(layer), target: lv, "top_k": len(study[lv]),
                               "mean_jaccard": float(j.mean()) if n else np.nan,
                               "jaccard_low": float(np.quantile(j, 0.025)) if n else np.nan,
                               "jaccard_high": float(np.quantile(j, 0.975)) if n else np.nan,
                               "resamples": n})
            skipped.append(settings.resamples - n)
    if max(skipped, default=0):
        notes.append(f"bootstrap: up to {max(skipped)} of {settings.resamples} resamples per (site, layer, "
                     f"{target} level) drew fewer than two clips of the level or of the rest and were "
                     "skipped; the table's resamples column gives the number used")
    return pd.DataFrame(unit_rows, columns=unit_cols), pd.DataFrame(layer_rows, columns=layer_cols), notes
