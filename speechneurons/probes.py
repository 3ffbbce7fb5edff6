"""Where in the network each factor lives: linear probes evaluated on speakers they never saw.

Per (site, layer) and factor of the corpus, a standardised ridge classifier
(regularised least squares on one-hot levels, the class with the largest
fitted value wins: scikit-learn's ``RidgeClassifier`` after ``StandardScaler``)
is trained on the pooled activations of some speakers and scored on the
others: outer folds are grouped by speaker (no speaker in both train and test;
for a between-speaker factor every test fold holds each level), and the
penalty alpha is chosen by an inner grouped cross-validation on the training
speakers only (nested CV). The score is balanced accuracy (mean recall over
levels; chance = 1 / levels), with a 95 % interval over folds. The null
relabels clips within each speaker (a within-speaker factor) or relabels
speakers (a between-speaker factor), refits with each fold's chosen alpha, and
gives a permutation p. A speaker-identity probe, scored over clips of speakers
it has seen (folds over clips), is the control: it says how much speaker
information the layer carries. This follows layer-wise probing of
self-supervised speech models (Pasad et al. 2021; Li et al. 2022), with held-out
speakers as the test.

Why ridge and not logistic regression (the probe before issue 22): its fit has a
closed form, so one Cholesky factorisation per (training set, penalty) serves
every relabelling of the null (they are extra right-hand sides), where the
logistic probe refitted iteratively 725 times per layer. Least-squares
classification is as accurate as logistic regression for linear probes (Rifkin &
Klautau 2004); on planted layers the layer-level answers agree
(``bench/probes_speed.py``, ``docs/probes-knockout-browser.md``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold

from speechneurons.cache import RESERVED_GIB, ActivationCache, UnitBlocks
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.intervals import bounded_interval
from speechneurons.settings import FromConfig

#: the row of the speaker-identity control in ``probes.parquet``
SPEAKER_PROBE = "speaker identity (control)"
PROBE_COLUMNS = ["site", "layer", "factor", "folds_grouped_by", "n_clips", "n_speakers", "n_levels",
                 "n_folds", "chance", "balanced_accuracy", "ci_low", "ci_high", "median_alpha",
                 "null_mean", "null_q95", "p_perm", "permutations", "q"]


@dataclass(frozen=True)
class ProbeSettings(FromConfig):
    """The ``probes`` section of the config."""

    SECTION: ClassVar[str] = "probes"

    folds: int = 5
    inner_folds: int = 3
    alphas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    permutations: int = 2000
    seed: int = 0


def standardised(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``train`` [n, d] and each of ``others`` [m, d] scaled by the training mean and standard
    deviation (scikit-learn's ``StandardScaler``: a constant unit keeps scale 1)."""
    mean = train.mean(axis=0)
    scale = safe_scale(train.std(axis=0))
    return [(a - mean) / scale for a in (train, *others)]


def safe_scale(scale: np.ndarray) -> np.ndarray:
    """StandardScaler's rule: a scale of (nearly) zero becomes 1."""
    scale = np.array(scale, dtype=np.float64)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    return scale


@dataclass(frozen=True)
class SpeakerGrams:
    """Sufficient statistics of one layer's x [clips, d] per speaker (clip count, sum, Gram
    matrix, after a shift by the layer mean for accuracy): the centred Gram matrix, mean and
    scale of the clips of any set of whole speakers, without reading the clips again. Every
    training set of a speaker-grouped probe is such a set. Memory: speakers x d x d float64
    (113 MB for 24 speakers of 768 units)."""

    names: np.ndarray  # [speakers]
    shift: np.ndarray  # [d]
    counts: np.ndarray  # [speakers]
    sums: np.ndarray  # [speakers, d]
    grams: np.ndarray  # [speakers, d, d]
    total: np.ndarray  # [d, d]: every speaker's Gram matrix summed

    @classmethod
    def of(cls, x: np.ndarray, speakers: np.ndarray) -> "SpeakerGrams":
        names, which = np.unique(speakers, return_inverse=True)
        shift = x.mean(axis=0)
        shifted = x - shift
        grams = np.stack([shifted[which == i].T @ shifted[which == i] for i in range(len(names))])
        sums = np.stack([shifted[which == i].sum(axis=0) for i in range(len(names))])
        return cls(names, shift, np.bincount(which, minlength=len(names)), sums, grams,
                   grams.sum(axis=0))

    def centred(self, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Gram matrix of the centred clips [d, d], mean [d], scale [d]) of the clips of
        ``speakers``: the training set's statistics for :func:`ridge_predictions`."""
        chosen = np.isin(self.names, np.unique(speakers))
        n = self.counts[chosen].sum()
        centre = self.sums[chosen].sum(axis=0) / n
        # the fewer Gram matrices to add: the chosen speakers', or every speaker's less the others'
        adding = 2 * chosen.sum() <= len(chosen)
        raw = np.zeros_like(self.total) if adding else self.total.copy()
        for i in np.flatnonzero(chosen if adding else ~chosen):  # in place: no [speakers, d, d] temporary
            (np.add if adding else np.subtract)(raw, self.grams[i], out=raw)
        raw -= n * np.outer(centre, centre)
        return raw, centre + self.shift, safe_scale(np.sqrt(np.clip(np.diag(raw) / n, 0.0, None)))


def _penalised_solve(gram: np.ndarray, penalty: np.ndarray | float, right: np.ndarray) -> np.ndarray:
    """(gram + diag(penalty))^-1 right, by a Cholesky factorisation of a copy of ``gram``."""
    system = gram.copy()
    system[np.diag_indices_from(system)] += penalty
    return cho_solve(cho_factor(system, overwrite_a=True, check_finite=False), right, check_finite=False)


def ridge_predictions(train: np.ndarray, targets: np.ndarray, test: np.ndarray,
                      alphas: tuple[float, ...] | list[float],
                      statistics: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Fitted values on ``test`` [m, d] of ridge regressions of ``targets`` [n, t] on ``train``
    [n, d], standardised on ``train``, with an unpenalised intercept: [len(alphas), m, t].

    One Cholesky factorisation per penalty of the smaller Gram matrix (the units', or the
    clips' when units outnumber clips) serves every target column, so a null's relabellings cost
    a solve each. With standardised units z = (x - mean) / scale, the ridge (Z'Z + alpha I) b =
    Z'y is solved as (X'X + alpha diag(scale^2)) c = X'y on the centred clips, b = scale * c.
    ``statistics`` (from :meth:`SpeakerGrams.centred` for these training clips) saves
    computing the units' Gram matrix.
    """
    offset = targets.mean(axis=0)
    centred = targets - offset
    if train.shape[1] <= train.shape[0] or statistics is not None:
        if statistics is None:
            mean = train.mean(axis=0)
            gram = (train - mean).T @ (train - mean)
            scale = safe_scale(np.sqrt(np.clip(np.diag(gram) / len(train), 0.0, None)))
        else:
            gram, mean, scale = statistics
        right = train.T @ centred  # = (train - mean)' centred, as centred sums to zero
        shifted = test - mean
        return np.stack([shifted @ _penalised_solve(gram, alpha * scale**2, right) + offset for alpha in alphas])
    a, b = standardised(train, test)
    gram, cross = a @ a.T, b @ a.T
    return np.stack([cross @ _penalised_solve(gram, np.full(len(gram), alpha), centred) + offset
                     for alpha in alphas])


def one_hot(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """[n] labels -> [n, classes] indicators."""
    return (labels[:, None] == classes[None, :]).astype(np.float64)


def balanced_accuracies(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Balanced accuracy of each column of ``predicted`` [n, r] (class indices) against ``truth``
    [n] (class indices): mean recall over the classes present in ``truth``, as scikit-learn's."""
    present = np.unique(truth)
    hits = predicted == truth[:, None]
    recall = [hits[truth == c].mean(axis=0) for c in present]
    return np.mean(recall, axis=0)


@dataclass(frozen=True)
class RidgeProbe:
    """A fitted probe: standardise with the training clips' mean and scale, then the class with
    the largest fitted value (``predict`` [m, d] -> [m] labels)."""

    mean: np.ndarray  # [d]
    scale: np.ndarray  # [d]
    coef: np.ndarray  # [d, classes]
    intercept: np.ndarray  # [classes]
    classes: np.ndarray  # [classes]
    alpha: float

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, alpha: float) -> "RidgeProbe":
        mean, scale = x.mean(axis=0), safe_scale(x.std(axis=0))
        a = (x - mean) / scale
        classes = np.unique(labels)
        targets = one_hot(labels, classes)
        offset = targets.mean(axis=0)
        if a.shape[1] <= a.shape[0]:
            coef = _penalised_solve(a.T @ a, alpha, a.T @ (targets - offset))
        else:
            coef = a.T @ _penalised_solve(a @ a.T, alpha, targets - offset)
        return cls(mean, scale, coef, offset, classes, float(alpha))

    def predict(self, x: np.ndarray) -> np.ndarray:
        fitted = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return self.classes[np.argmax(fitted, axis=1)]


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


def labelled_predictions(x: np.ndarray, labellings: list[np.ndarray], train: np.ndarray, test: np.ndarray,
                         alphas, statistics=None) -> list[np.ndarray]:
    """Per labelling [n] (level indices), the predicted level indices of ``test`` [alphas, m],
    fitted on ``train`` (every labelling one block of right-hand sides of the same fit)."""
    levels = [int(r.max()) + 1 for r in labellings]
    targets = np.concatenate([one_hot(r[train], np.arange(k)) for r, k in zip(labellings, levels)], axis=1)
    fitted = ridge_predictions(x[train], targets, x[test], alphas, statistics)  # [alphas, m, sum(levels)]
    edges = np.cumsum([0, *levels])
    return [fitted[:, :, lo:hi].argmax(axis=2) for lo, hi in zip(edges[:-1], edges[1:])]


def choose_alphas(x: np.ndarray, label_sets: list[np.ndarray], speakers: np.ndarray, within: bool,
                  settings: ProbeSettings, seed: int, grams: SpeakerGrams | None = None) -> list[float]:
    """Per label set, the penalty chosen by grouped CV on these clips' speakers (the training
    speakers): the best mean balanced accuracy over the inner folds, the first of
    ``settings.alphas`` on a tie (scikit-learn's ``GridSearchCV``); the middle alpha when there
    are too few speakers (or levels per inner fold) to choose. The label sets share the inner
    folds (within-speaker folds do not depend on the labels; a between-speaker factor comes
    alone) and their fits. ``grams`` (of a layer whose clips of each of these speakers are all
    here) saves the Gram matrices."""
    inner = speaker_folds(label_sets[0], speakers, settings.inner_folds, within, seed)
    middle = float(settings.alphas[len(settings.alphas) // 2])
    chosen = [middle] * len(label_sets)
    able = [i for i, labels in enumerate(label_sets)
            if len(inner) >= 2 and len(settings.alphas) > 1
            and all(len(np.unique(labels[train])) >= 2 for train, _ in inner)]
    if not able:
        return chosen
    indices = [np.unique(label_sets[i], return_inverse=True)[1] for i in able]
    scores = np.zeros((len(able), len(settings.alphas)))
    for train, test in inner:
        predicted = labelled_predictions(x, indices, train, test, settings.alphas,
                                         _statistics(grams, speakers[train]))
        for j, (index, guess) in enumerate(zip(indices, predicted)):
            scores[j] += balanced_accuracies(index[test], guess.T)
    for j, i in enumerate(able):
        chosen[i] = float(settings.alphas[int(np.argmax(scores[j] / len(inner)))])
    return chosen


def choose_alpha(x: np.ndarray, labels: np.ndarray, speakers: np.ndarray, within: bool,
                 settings: ProbeSettings, seed: int, grams: SpeakerGrams | None = None) -> float:
    """:func:`choose_alphas` of one label set."""
    return choose_alphas(x, [labels], speakers, within, settings, seed, grams)[0]


def fit_probe(x: np.ndarray, labels: np.ndarray, speakers: np.ndarray, within: bool,
              settings: ProbeSettings, seed: int) -> RidgeProbe:
    """A probe fitted on all of these clips with the alpha :func:`choose_alpha` picks on them."""
    return RidgeProbe.fit(x, labels, choose_alpha(x, labels, speakers, within, settings, seed))


def score(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Balanced accuracy (mean recall over the levels present in ``labels``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(labels, predicted))


def relabellings(labels: np.ndarray, speakers: np.ndarray, within: bool, count: int,
                 rng: np.random.Generator) -> np.ndarray:
    """[count, n] label indices (labels [n] level indices) of ``count`` draws of the null: whole
    (speaker, level) cells relabelled within each speaker, or whole speakers' labels shuffled.

    Within a speaker every clip of a level takes the same new level (a
    permutation of the speaker's own levels), so a speaker's own pattern
    across its cells is kept and only its alignment with the labels is
    broken: the multi-level exchangeability blocks of Winkler et al. (2015).
    Shuffling single clips instead would break the cells apart and make a
    speaker's own level pattern (a speaker x level slope) look like signal
    to the null's disadvantage.
    """
    out = np.empty((count, len(labels)), dtype=labels.dtype)
    if within:
        for speaker in np.unique(speakers):
            rows = np.flatnonzero(speakers == speaker)
            own, where = np.unique(labels[rows], return_inverse=True)
            order = np.argsort(rng.random((count, len(own))), axis=1)  # a uniform permutation per draw
            out[:, rows] = own[order][:, where]
        return out
    names, first, which = np.unique(speakers, return_index=True, return_inverse=True)
    own = labels[first]
    order = np.argsort(rng.random((count, len(names))), axis=1)
    return own[order][:, which]


def hat_matrix(x: np.ndarray, train: np.ndarray, test: np.ndarray, alpha: float, statistics=None) -> np.ndarray:
    """[m, n] the ridge fit's linear map from training targets to fitted values on ``test``
    (:func:`ridge_predictions` is linear in its targets: fitted(Y) = M @ Y for any Y [n, t]), so a
    null's relabellings are one matrix product each block."""
    return ridge_predictions(x[train], np.eye(len(train)), x[test], [alpha], statistics)[0]


def labelling_accuracies(hat: np.ndarray, train_labels: np.ndarray, test_labels: np.ndarray, levels: int,
                         block: int = 256) -> np.ndarray:
    """[labellings] balanced accuracy on the test clips of each labelling (rows of train_labels
    [L, n] and test_labels [L, m], level indices below ``levels``) from the fit ``hat`` [m, n]:
    the predicted level is the largest fitted one-hot column, recall averaged over the levels
    present in that labelling's test clips (as :func:`balanced_accuracies`)."""
    out = np.empty(len(train_labels))
    classes = np.arange(levels)
    for start in range(0, len(train_labels), block):
        rows = train_labels[start:start + block]  # [b, n]
        targets = (rows[:, :, None] == classes).astype(np.float64)  # [b, n, k]
        fitted = np.einsum("mn,bnk->bmk", hat, targets, optimize=True)
        guess = fitted.argmax(axis=2)  # [b, m]
        truth = test_labels[start:start + block]
        recalls = []
        for c in classes:
            present = truth == c
            with np.errstate(invalid="ignore", divide="ignore"):
                recalls.append(((guess == c) & present).sum(axis=1) / present.sum(axis=1))
        out[start:start + block] = np.nanmean(np.stack(recalls), axis=0)
    return out


def _statistics(grams: SpeakerGrams | None, speakers: np.ndarray):
    """The centred Gram matrix of these speakers' clips, where ``grams`` has it."""
    return grams.centred(speakers) if grams is not None else None


def uses_speaker_grams(x: np.ndarray) -> bool:
    """Whether a probe of x [clips, units] works from per-speaker Gram matrices: when the units'
    Gram matrix is not larger than the clips' (else the clips' is used)."""
    return x.shape[1] <= len(x)


def mean_over_folds(scores: np.ndarray) -> np.ndarray:
    """[labellings, folds] -> [labellings]: the mean over the folds that taught something."""
    taught = ~np.isnan(scores)
    return np.where(taught.any(axis=1), np.nansum(scores, axis=1) / np.maximum(taught.sum(axis=1), 1), np.nan)


def _result(scores: np.ndarray, null: np.ndarray, alphas: list[float]) -> dict:
    """One probe row from its fold scores [folds], null [permutations] and fold alphas."""
    observed = float(np.mean(scores))
    low, high = bounded_interval(np.asarray(scores))
    return {
        "n_folds": len(scores), "balanced_accuracy": observed, "ci_low": low, "ci_high": high,
        "median_alpha": float(np.median(alphas)),
        "null_mean": float(np.nanmean(null)) if len(null) else np.nan,
        "null_q95": float(np.nanquantile(null, 0.95)) if len(null) else np.nan,
        "p_perm": float((1 + np.sum(null >= observed)) / (1 + len(null))) if len(null) else np.nan,
        "permutations": len(null),
    }


NOT_PROBED = {"n_folds": 0, "balanced_accuracy": np.nan, "ci_low": np.nan, "ci_high": np.nan,
              "median_alpha": np.nan, "null_mean": np.nan, "null_q95": np.nan, "p_perm": np.nan,
              "permutations": 0}


def probe_within_factors(x: np.ndarray, label_sets: list[np.ndarray], speakers: np.ndarray,
                         settings: ProbeSettings, fold_seed: int, null_seeds: list[int],
                         grams: SpeakerGrams | None = None) -> list[dict]:
    """Held-out-speaker balanced accuracy of within-speaker factors from x [clips, units], and
    their nulls (label set i relabelled with ``null_seeds[i]``), one result per label set.

    The factors share the speaker folds (within-speaker folds do not depend on the labels) and
    therefore every fit: each factor's levels, and each relabelling of its null, are more
    right-hand sides of the same factorisation."""
    folds = speaker_folds(label_sets[0], speakers, settings.folds, True, fold_seed)
    taught = [[len(np.unique(labels[train])) > 1 for train, _ in folds] for labels in label_sets]
    alphas = np.array([choose_alphas(x[train], [labels[train] for labels in label_sets], speakers[train], True,
                                     settings, fold_seed + k, grams) for k, (train, _) in enumerate(folds)]).T
    labellings, levels = [], []
    for labels, seed in zip(label_sets, null_seeds):
        classes, index = np.unique(labels, return_inverse=True)
        drawn = relabellings(index, speakers, True, settings.permutations, np.random.default_rng(seed))
        labellings.append(np.concatenate([index[None], drawn]))  # [1 + permutations, n]
        levels.append(len(classes))
    scores = np.full((len(label_sets), 1 + settings.permutations, len(folds)), np.nan)
    for k, (train, test) in enumerate(folds):
        for alpha in np.unique(alphas[:, k]):  # the factors that chose this penalty in this fold
            which = [i for i in range(len(label_sets)) if alphas[i, k] == alpha and taught[i][k]]
            if which:
                hat = hat_matrix(x, train, test, alpha, _statistics(grams, speakers[train]))
                for i in which:
                    scores[i, :, k] = labelling_accuracies(hat, labellings[i][:, train], labellings[i][:, test],
                                                           levels[i])
    results = []
    for i in range(len(label_sets)):
        kept = np.flatnonzero(taught[i])
        observed, null = scores[i][0][kept], scores[i][1:][:, kept]  # [folds], [permutations, folds]
        results.append(_result(observed, mean_over_folds(null), list(alphas[i][kept])) if len(kept)
                       else dict(NOT_PROBED))
    return results


def probe_factor(x: np.ndarray, labels: np.ndarray, speakers: np.ndarray, within: bool,
                 settings: ProbeSettings, seed: int, grams: SpeakerGrams | None = None) -> dict:
    """Held-out-speaker balanced accuracy of one factor from x [clips, units], and its null.
    ``grams`` (:meth:`SpeakerGrams.of` these clips; computed when not given) is shared by the
    factors of a layer."""
    if grams is None and uses_speaker_grams(x):
        grams = SpeakerGrams.of(x, speakers)
    if within:
        return probe_within_factors(x, [labels], speakers, settings, seed, [seed], grams)[0]
    # folds dealt without the labels, so that the observed and every relabelled statistic use the
    # same folds (an exact permutation test of whole speakers); a fold whose training speakers
    # hold one level of a labelling teaches nothing and is left out of that labelling's mean
    classes, index = np.unique(labels, return_inverse=True)
    folds = speaker_folds(labels, speakers, settings.folds, True, seed)
    taught = [len(np.unique(index[train])) > 1 for train, _ in folds]
    if len(folds) < 2 or not any(taught):
        return dict(NOT_PROBED)
    alphas = [choose_alpha(x[train], labels[train], speakers[train], False, settings, seed + k, grams)
              if ok else np.nan for k, ((train, _), ok) in enumerate(zip(folds, taught))]
    drawn = relabellings(index, speakers, False, settings.permutations, np.random.default_rng(seed))
    every = np.concatenate([index[None], drawn])  # [1 + permutations, n]
    scores = np.full((len(every), len(folds)), np.nan)
    for k, (train, test) in enumerate(folds):
        if taught[k]:
            hat = hat_matrix(x, train, test, alphas[k], _statistics(grams, speakers[train]))
            scores[:, k] = labelling_accuracies(hat, every[:, train], every[:, test], len(classes))
            teaches = np.array([len(np.unique(r)) > 1 for r in every[:, train]])
            scores[~teaches, k] = np.nan
    kept = np.flatnonzero(taught)
    return _result(scores[0, kept], mean_over_folds(scores[1:]), [alphas[k] for k in kept])


def speaker_probe(x: np.ndarray, speakers: np.ndarray, settings: ProbeSettings, seed: int) -> dict:
    """Balanced accuracy of naming the speaker, folds over clips (every speaker on both sides)."""
    counts = pd.Series(speakers).value_counts()
    n = int(min(settings.folds, counts.min()))
    if len(counts) < 2 or n < 2:
        return {"n_folds": 0}
    scores, alphas = [], []
    for k, (train, test) in enumerate(StratifiedKFold(n, shuffle=True, random_state=seed).split(
            x, speakers)):
        # inner folds over clips too: the clips' positions stand in for speakers
        model = fit_probe(x[train], speakers[train], np.arange(len(train)) % n, True, settings, seed + k)
        alphas.append(model.alpha)
        scores.append(score(speakers[test], model.predict(x[test])))
    low, high = bounded_interval(np.asarray(scores))
    return {"n_folds": n, "balanced_accuracy": float(np.mean(scores)), "ci_low": low,
            "ci_high": high, "median_alpha": float(np.median(alphas)), "permutations": 0}


def reserved_gib(n_clips: int, n_speakers: int, widest_layer: int) -> float:
    """GiB a probes job holds beside the cache's blocks: the interpreter and libraries, and one
    layer's probes (its float64 clips, a few copies, and a Gram matrix per speaker when the
    layer is narrower than the clips)."""
    layer = 4 * n_clips * widest_layer * 8
    grams = (n_speakers + 2) * widest_layer**2 * 8 if widest_layer < n_clips else 0
    return RESERVED_GIB + (layer + grams) / 2**30


def probe_blocks(cache: ActivationCache, clips: pd.DataFrame, memory_gib: float):
    """:meth:`ActivationCache.blocks` for :func:`layer_probes`: blocks of the cache that fit
    ``memory_gib`` beside one layer's probes (:func:`reserved_gib`)."""
    widest = int(cache.units.groupby(["site", "layer"]).size().max())
    speakers = int(clips.loc[clips["clip_id"].isin(cache.clip_ids), SPEAKER].nunique())
    return cache.blocks(4, memory_gib, reserved_gib(len(cache.clip_ids), speakers, widest))


def layer_probes(source: UnitBlocks, clips: pd.DataFrame, spec: CorpusSpec,
                 settings: ProbeSettings = ProbeSettings(), progress: bool = True
                 ) -> tuple[pd.DataFrame, list[str]]:
    """(one row per (site, layer, factor) plus the speaker control: :data:`PROBE_COLUMNS`; notes).

    ``source``: the activations, a layer's columns read at a time. A factor
    with one level in the clips, or with fewer than two speakers to hold
    out, is not probed, and ``notes`` says so.
    """
    from tqdm.auto import tqdm

    meta = clips.set_index("clip_id").loc[source.clip_ids].reset_index()
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
    groups = list(source.units.groupby(["site", "layer"], sort=True).groups.items())
    for offset, ((site, layer), index) in enumerate(tqdm(groups, desc="probes", unit="layer",
                                                           disable=not progress)):
        x = source.columns(index.to_numpy()).astype(np.float64)
        every = SpeakerGrams.of(x, speakers) if uses_speaker_grams(x) else None
        seed = settings.seed + 1000 * offset
        # within-speaker factors known for every clip share their folds and fits
        shared = [f for f, (_, known, _, _, within) in enumerate(factors) if within and known.all()]
        results = dict(zip(shared, probe_within_factors(x, [factors[f][2] for f in shared], speakers, settings,
                                                        seed, [seed + f for f in shared], every)
                           if shared else []))
        for f, (factor, known, labels, n_levels, within) in enumerate(factors):
            result = results[f] if f in results else probe_factor(
                x[known], labels[known], speakers[known], within, settings, seed + f, every if known.all() else None)
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
