"""What a probe loses when a set is knocked out: per fold, own-level and other-level recall,
selected against matched random units, paired over folds with t-intervals and BH q."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.knockout.sets import knocked_units
from speechneurons.probes import ProbeSettings, fit_probe, score, speaker_folds
from speechneurons.stats.fdr import bh
from speechneurons.stats.intervals import t_interval

#: grouped folds inside a held-out fold: its probes are trained on some of its speakers, scored on the rest
PROBE_FOLDS = 3


def _recalls(labels: np.ndarray, predicted: np.ndarray, levels: Sequence) -> np.ndarray:
    return np.array([np.mean(predicted[labels == v] == v) if (labels == v).any() else np.nan
                     for v in levels])


def knockout_effects(matrix: ActivationMatrix, knocked: dict[str, np.ndarray], sets: pd.DataFrame,
                     clips: pd.DataFrame, spec: CorpusSpec,
                     settings: ProbeSettings = ProbeSettings()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per fold, summary) of what knocking out each set costs probes on the speakers held out.

    ``knocked[set_id]``: [the set's held-out clips in matrix order,
    knocked_units(matrix, layer)]. Per fold of the selection, probes of
    layer M >= L are cross-fitted inside the fold's own speakers (grouped
    folds of :data:`PROBE_FOLDS`: trained on some held-out speakers, scored
    on the others), so that neither the speakers that chose the units nor
    the scored ones trained the probe; each scores its clips without and
    with each of the fold's sets knocked out: balanced accuracy and each
    level's recall loss over the fold's clips.
    The summary, per (site, layer, level, probe layer): selected and random (mean
    over the random sets) accuracy drop, own-level recall loss and mean
    other-level loss; and ``specificity`` = own - other loss, selected minus
    random, paired over folds: mean, 95 % t-interval, paired t p, and its
    BH q over the summary's rows.
    """
    meta = clips.set_index("clip_id").loc[matrix.clip_ids]
    labels = meta[spec.target].astype(str).to_numpy()
    speakers = meta[SPEAKER].astype(str).to_numpy()
    levels = [str(v) for v in spec.levels(spec.target) if str(v) in set(labels)]
    hidden = matrix.units[matrix.units["site"] == "hidden"]
    rows = []
    for fold, fold_sets in sets.groupby("fold", sort=True):
        test = np.flatnonzero(np.isin(speakers, list(fold_sets["held_out"].iloc[0])))
        # probes are trained inside the held-out fold, on other held-out speakers than they score:
        # a probe trained on the speakers that chose the units leans on their chance patterns, and
        # knocking the units out then costs it more than random units (+0.019 recall, 9 SE, measured)
        inner = [(a, b) for a, b in speaker_folds(labels[test], speakers[test], PROBE_FOLDS, True,
                                                  settings.seed + int(fold))
                 if len(np.unique(labels[test][a])) > 1]
        if not inner:
            continue
        for probe_layer in range(int(fold_sets["layer"].min()), int(hidden["layer"].max()) + 1):
            x = matrix.values[test][:, hidden.index[hidden["layer"] == probe_layer].to_numpy()].astype(np.float64)
            chosen = fold_sets[fold_sets["layer"] <= probe_layer]
            scored = np.concatenate([b for _, b in inner])
            base = np.empty(len(test), dtype=object)
            knocked_out = {s: np.empty(len(test), dtype=object) for s in chosen["set_id"]}
            for k, (a, b) in enumerate(inner):
                probe = fit_probe(x[a], labels[test][a], speakers[test][a], True, settings,
                                  settings.seed + 100 * int(fold) + k)
                base[b] = probe.predict(x[b])
                for s in chosen.itertuples(index=False):
                    # this probe layer's block among the set's columns (layers s.layer..last)
                    block = matrix.units.loc[knocked_units(matrix, s.layer), "layer"].to_numpy() == probe_layer
                    knocked_out[s.set_id][b] = probe.predict(knocked[s.set_id][b][:, block].astype(np.float64))
            truth = labels[test][scored]
            base_recall = _recalls(truth, base[scored], levels)
            for s in chosen.itertuples(index=False):
                ko = knocked_out[s.set_id][scored]
                loss = base_recall - _recalls(truth, ko, levels)
                own = levels.index(str(s.level))
                rows.append({"site": s.site, "layer": s.layer, "level": s.level, "condition": s.condition,
                             "replicate": s.replicate, "probe_layer": probe_layer, "fold": int(fold),
                             "n_test_speakers": len(set(speakers[test])),
                             "n_units": len(s.neurons), "accuracy_base": score(truth, base[scored]),
                             "accuracy_knocked": score(truth, ko),
                             "own_loss": loss[own],
                             "other_loss": float(np.nanmean(np.delete(loss, own)))})
    per_fold = pd.DataFrame(rows)
    if per_fold.empty:
        return per_fold, pd.DataFrame()
    per_fold["accuracy_drop"] = per_fold["accuracy_base"] - per_fold["accuracy_knocked"]
    per_fold["specificity"] = per_fold["own_loss"] - per_fold["other_loss"]
    return per_fold, summarise(per_fold)


def summarise(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Selected against matched random units, paired over folds (see :func:`knockout_effects`)."""
    keys = ["site", "layer", "level", "probe_layer"]
    measures = ["accuracy_drop", "own_loss", "other_loss", "specificity"]
    by_fold = (per_fold.groupby([*keys, "fold", "condition"])[measures].mean()
               .unstack("condition"))
    rows = []
    for key, group in by_fold.groupby(level=keys, sort=True):
        row = dict(zip(keys, key))
        row["n_folds"] = len(group)
        for measure in measures:
            for condition in ("selected", "random"):
                row[f"{measure}_{condition}"] = float(group[(measure, condition)].mean()) \
                    if (measure, condition) in group else np.nan
        row["specificity_difference"] = row["ci_low"] = row["ci_high"] = row["p"] = np.nan
        if ("specificity", "random") in group:
            diff = (group[("specificity", "selected")] - group[("specificity", "random")]).dropna().to_numpy()
            row["specificity_difference"] = float(diff.mean()) if len(diff) else np.nan
            row["ci_low"], row["ci_high"] = t_interval(diff)
            row["p"] = (float(stats.ttest_1samp(diff, 0.0).pvalue)
                        if len(diff) > 1 and diff.std() > 0 else np.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["q"] = bh(out["p"].to_numpy(dtype=float))
    return out
