"""Where in the network each factor lives: linear probes evaluated on speakers they never saw.

Per (site, layer) and factor of the corpus, a standardised multinomial
logistic regression (scikit-learn) is trained on the pooled activations of
some speakers and scored on the others: outer folds are grouped by speaker
(no speaker in both train and test; for a between-speaker factor every
test fold holds each level), and the regularisation strength C is chosen by
an inner grouped cross-validation on the training speakers only (nested CV). The score is balanced accuracy (mean recall over levels; chance = 1 / levels),
with a 95 % t-interval over folds. The null relabels clips within each
speaker (a within-speaker factor) or relabels speakers (a between-speaker
factor), refits with each fold's chosen C, and gives a permutation p. A
speaker-identity probe, scored over clips of speakers it has seen (folds
over clips), is the control: it says how much speaker information the layer
carries. This follows layer-wise probing of self-supervised speech models
(Pasad et al. 2021; Li et al. 2022), with held-out speakers as the test.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.intervals import bounded_interval
from speechneurons.settings import FromConfig

#: the row of the speaker-identity control in ``probes.parquet``
SPEAKER_PROBE = "speaker identity (control)"
PROBE_COLUMNS = ["site", "layer", "factor", "folds_grouped_by", "n_clips", "n_speakers", "n_levels",
                 "n_folds", "chance", "balanced_accuracy", "ci_low", "ci_high", "median_C",
                 "null_mean", "null_q95", "p_perm", "permutations", "q"]


@dataclass(frozen=True)
class ProbeSettings(FromConfig):
    """The ``probes`` section of the config."""

    SECTION: ClassVar[str] = "probes"

    folds: int = 5
    inner_folds: int = 3
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    permutations: int = 20
    max_iter: int = 300
    seed: int = 0


def probe_model(C: float, settings: ProbeSettings) -> Pipeline:
    """Standardise, then multinomial logistic regression with strength C."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=settings.max_iter))


def speaker_folds(labels: np.ndarray, speakers: np.ndarray, n_folds: int, within: bool, seed: int
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) clip indices with no speaker on both sides.

    Speakers are dealt round robin into folds after a seeded shuffle; for a
    between-speaker factor, level by level, so that every test fold holds
    each level (the number of folds is then at most the fewest speakers of
    a level).
    """
    rng = np.random.default_rng(seed)
    names = np.unique(speakers)
    if within:
        strata = [names]
    else:
        level = pd.Series(labels).groupby(speakers).first()
        strata = [level.index[level == v].to_numpy() for v in np.unique(level.to_numpy())]
    n = min(n_folds, min(len(s) for s in strata))
    fold_of: dict = {}
    dealt = 0
    for stratum in strata:
        for speaker in rng.permutation(stratum):
            fold_of[speaker] = dealt % n
            dealt += 1
    which = np.array([fold_of[s] for s in speakers])
    return [(np.flatnonzero(which != k), np.flatnonzero(which == k)) for k in range(n)]


def fit_probe(x: np.ndarray, labels: np.ndarray, speakers: np.ndarray, within: bool,
              settings: ProbeSettings, seed: int) -> Pipeline:
    """A probe whose C is chosen by grouped CV on these clips' speakers (the training speakers);
    the middle C when there are too few speakers (or levels per inner fold) to choose."""
    inner = speaker_folds(labels, speakers, settings.inner_folds, within, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        thin = any(len(np.unique(labels[train])) < 2 for train, _ in inner)
        if len(inner) < 2 or len(settings.Cs) == 1 or thin:
            return probe_model(settings.Cs[len(settings.Cs) // 2], settings).fit(x, labels)
        search = GridSearchCV(probe_model(1.0, settings), {"logisticregression__C": list(settings.Cs)},
                              cv=inner, scoring="balanced_accuracy", refit=True)
        return search.fit(x, labels).best_estimator_


def score(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Balanced accuracy (mean recall over the levels present in ``labels``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(labels, predicted))


def _fit_at(C: float, x: np.ndarray, labels: np.ndarray, settings: ProbeSettings) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return probe_model(C, settings).fit(x, labels)


def _refit(model: Pipeline, x: np.ndarray, labels: np.ndarray, settings: ProbeSettings) -> Pipeline:
    return _fit_at(model.named_steps["logisticregression"].C, x, labels, settings)


def relabel(labels: np.ndarray, speakers: np.ndarray, within: bool, rng: np.random.Generator
            ) -> np.ndarray:
    """Labels under the null: whole (speaker, level) cells relabelled within each speaker, or
    whole speakers' labels shuffled.

    Within a speaker every clip of a level takes the same new level (a
    permutation of the speaker's own levels), so a speaker's own pattern
    across its cells is kept and only its alignment with the labels is
    broken: the multi-level exchangeability blocks of Winkler et al. (2015).
    Shuffling single clips instead would break the cells apart and make a
    speaker's own level pattern (a speaker x level slope) look like signal
    to the null's disadvantage.
    """
    out = labels.copy()
    if within:
        for speaker in np.unique(speakers):
            rows = np.flatnonzero(speakers == speaker)
            own = np.unique(labels[rows])
            mapping = dict(zip(own, own[rng.permutation(len(own))]))
            out[rows] = [mapping[v] for v in labels[rows]]
        return out
    names, first = np.unique(speakers, return_index=True)
    shuffled = dict(zip(names, labels[first][rng.permutation(len(names))]))
    return np.array([shuffled[s] for s in speakers], dtype=labels.dtype)


def probe_factor(x: np.ndarray, labels: np.ndarray, speakers: np.ndarray, within: bool,
                 settings: ProbeSettings, seed: int) -> dict:
    """Held-out-speaker balanced accuracy of one factor from x [clips, units], and its null."""
    folds = [(train, test) for train, test in speaker_folds(labels, speakers, settings.folds, within, seed)
             if len(np.unique(labels[train])) > 1]  # a fold whose training clips hold one level teaches nothing
    if not folds:
        return {"n_folds": 0, "balanced_accuracy": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                "median_C": np.nan, "null_mean": np.nan, "null_q95": np.nan, "p_perm": np.nan,
                "permutations": 0}
    scores, models = [], []
    for k, (train, test) in enumerate(folds):
        model = fit_probe(x[train], labels[train], speakers[train], within, settings, seed + k)
        models.append(model)
        scores.append(score(labels[test], model.predict(x[test])))
    rng = np.random.default_rng(seed)
    median_C = float(np.median([m.named_steps["logisticregression"].C for m in models]))
    null = []
    for i in range(settings.permutations):
        shuffled = relabel(labels, speakers, within, rng)
        if within:  # the folds do not depend on the labels: refit each fold with its C
            pairs = list(zip(models, folds))
        else:  # folds stratified on the relabelled speakers, as the observed ones were on the true
            pairs = [(None, f) for f in speaker_folds(shuffled, speakers, settings.folds, False,
                                                      seed + 7919 * (i + 1))]
        fold_scores = []
        for model, (train, test) in pairs:
            if len(np.unique(shuffled[train])) < 2:
                continue
            refit = (_refit(model, x[train], shuffled[train], settings) if model is not None else
                     _fit_at(median_C, x[train], shuffled[train], settings))
            fold_scores.append(score(shuffled[test], refit.predict(x[test])))
        null.append(np.mean(fold_scores) if fold_scores else np.nan)
    null = np.asarray(null, dtype=float)
    observed = float(np.mean(scores))
    low, high = bounded_interval(np.asarray(scores))
    return {
        "n_folds": len(folds), "balanced_accuracy": observed, "ci_low": low, "ci_high": high,
        "median_C": median_C,
        "null_mean": float(np.nanmean(null)) if len(null) else np.nan,
        "null_q95": float(np.nanquantile(null, 0.95)) if len(null) else np.nan,
        "p_perm": float((1 + np.sum(null >= observed)) / (1 + len(null))) if len(null) else np.nan,
        "permutations": len(null),
    }


def speaker_probe(x: np.ndarray, speakers: np.ndarray, settings: ProbeSettings, seed: int) -> dict:
    """Balanced accuracy of naming the speaker, folds over clips (every speaker on both sides)."""
    counts = pd.Series(speakers).value_counts()
    n = int(min(settings.folds, counts.min()))
    if len(counts) < 2 or n < 2:
        return {"n_folds": 0}
    scores, Cs = [], []
    for k, (train, test) in enumerate(StratifiedKFold(n, shuffle=True, random_state=seed).split(
            x, speakers)):
        # inner folds over clips too: the clips' positions stand in for speakers
        model = fit_probe(x[train], speakers[train], np.arange(len(train)) % n, True, settings, seed + k)
        Cs.append(model.named_steps["logisticregression"].C)
        scores.append(score(speakers[test], model.predict(x[test])))
    low, high = bounded_interval(np.asarray(scores))
    return {"n_folds": n, "balanced_accuracy": float(np.mean(scores)), "ci_low": low,
            "ci_high": high, "median_C": float(np.median(Cs)), "permutations": 0}


def layer_probes(matrix: ActivationMatrix, clips: pd.DataFrame, spec: CorpusSpec,
                 settings: ProbeSettings = ProbeSettings(), progress: bool = True
                 ) -> tuple[pd.DataFrame, list[str]]:
    """(one row per (site, layer, factor) plus the speaker control: :data:`PROBE_COLUMNS`; notes).

    A factor with one level in the clips, or with fewer than two speakers
    to hold out, is not probed, and ``notes`` says so.
    """
    from tqdm.auto import tqdm

    meta = clips.set_index("clip_id").loc[matrix.clip_ids].reset_index()
    speakers = meta[SPEAKER].astype(str).to_numpy()
    rows, notes, factors = [], [], []
    for factor in spec.factor_names:
        known = meta[factor].notna().to_numpy()
        labels = meta[factor].astype(str).to_numpy()
        n_levels = len(np.unique(labels[known]))
        n_speakers = len(np.unique(speakers[known]))
        if n_levels < 2 or n_speakers < 2:
            notes.append(f"probes: {factor} not probed ({n_levels} level(s), {n_speakers} speaker(s) "
                         "with a known level; held-out-speaker folds need two of each)")
            continue
        factors.append((factor, known, labels, n_levels, spec.factor(factor).varies == "within"))
    groups = list(matrix.units.groupby(["site", "layer"], sort=True).groups.items())
    for offset, ((site, layer), index) in enumerate(tqdm(groups, desc="probes", unit="layer",
                                                           disable=not progress)):
        x = matrix.values[:, index.to_numpy()].astype(np.float64)
        for f, (factor, known, labels, n_levels, within) in enumerate(factors):
            result = probe_factor(x[known], labels[known], speakers[known], within, settings,
                                  settings.seed + 1000 * offset + f)
            if result["n_folds"] == 0 and offset == 0:
                notes.append(f"probes: {factor} not probed, no fold's training speakers hold two of "
                             "its levels")
            rows.append({"site": site, "layer": int(layer), "factor": factor,
                         "folds_grouped_by": SPEAKER, "n_clips": int(known.sum()),
                         "n_speakers": len(np.unique(speakers[known])), "n_levels": n_levels,
                         "chance": 1.0 / n_levels, **result})
        control = speaker_probe(x, speakers, settings, settings.seed + 1000 * offset + 999)
        if control["n_folds"]:
            rows.append({"site": site, "layer": int(layer), "factor": SPEAKER_PROBE,
                         "folds_grouped_by": "clip", "n_clips": len(speakers),
                         "n_speakers": len(np.unique(speakers)),
                         "n_levels": len(np.unique(speakers)),
                         "chance": 1.0 / len(np.unique(speakers)), **control})
    if not any(r["factor"] == SPEAKER_PROBE for r in rows):
        notes.append("probes: no speaker-identity control (a speaker needs two clips per fold)")
    table = pd.DataFrame(rows, columns=PROBE_COLUMNS)
    tested = (table["factor"] != SPEAKER_PROBE).to_numpy()
    table.loc[tested, "q"] = bh(table.loc[tested, "p_perm"].to_numpy(dtype=float))
    if tested.sum() and tested.sum() / (settings.permutations + 1) >= 0.05:
        notes.append(f"probes: with {settings.permutations} permutations and {int(tested.sum())} "
                     "(layer, factor) rows, q (BH over the rows) cannot fall below "
                     f"{tested.sum() / (settings.permutations + 1):.2g}; raise probes.permutations "
                     f"to at least {int(np.ceil(20 * tested.sum()))} for a q that can reach 0.05")
    return table, notes
