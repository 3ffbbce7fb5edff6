"""Which units to ablate: top units per (layer, target level), chosen on some speakers, tested on others.

A unit is ranked for a level of the target factor by an effect that holds
across speakers: per speaker, the level's cell minus the mean of the
speaker's other cells (cells adjusted for the other within-speaker factors,
as the speaker-general test adjusts them), summarised over speakers as
``score`` = mean / SD (the speaker-level d, d_z). A unit that moves a little
in every speaker outranks one that moves a lot in a few. By default
(``require_selective``) a level takes only units that the speaker-general
test calls selective for the target factor and that a test of that level
names: per selective unit, each level's one-vs-rest contrast over speakers
gets a one-sided p towards a raised level (sign flips, or the one-sample t
where the speakers are too few for the flips), Benjamini-Hochberg within the unit's levels
at alpha R / m (R selective units of m: Benjamini & Bogomolov 2014 for
selected families), and the unit is named for every level that passes with
a positive effect (``level_p``, ``level_q`` with q < alpha). A level may get
fewer than ``top_k`` units (the notes count them), and a unit may be named
for two levels (a unit of arousal for two high-arousal levels). Without
``require_selective`` a level takes the units that prefer it (largest score,
positive), untested.

Selection happens twice:

- ``top_k``: on every speaker, for figures, the listening page and the unit
  browser. These rows name units; no test of them is computed on the same
  speakers.
- ``cross_fit``: the speakers are dealt into ``folds`` folds, balanced by
  the corpus's between-speaker group factor; in fold f the units are chosen
  on the other folds' speakers (the speaker-general test and the level test
  on those speakers alone) and listed with f's speakers in ``held_out``.
  Each row's level is then tested on the held-out speakers
  (``heldout_d``, ``heldout_p``, ``heldout_q``: BH over every cross_fit
  row), and :func:`replication` summarises them per (site, layer).
  Knock-out, question 2 and the bootstrap interval test a ``cross_fit`` row
  on its held-out speakers only (Kriegeskorte et al. 2009 on circular
  analysis; cross-fitting as in Chernozhukov et al. 2018).

A design too thin for the speaker-level effect (fewer than three speakers
with the level and another) falls back to the clip-level difference of
means over the SD of all clips, and one too thin for the speaker-general
test drops the selective filter; ``score_name`` and the notes say so for
every such row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from speechneurons.cache import UnitBlocks
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.repeated import flip_pvalues, flips_exceed, level_contrasts, median_df, tail_flips_for
from speechneurons.stats.selectivity import discoveries, speaker_rows, speaker_test
from speechneurons.settings import FromConfig

#: the evidence a unit was chosen on, from the target factor's speaker-general test: the study's
#: selectivity table for top_k, explicit and random rows; the fold's training speakers for cross_fit
CARRIED = ["q_speaker", "q_perm", "selective"]
SPEAKER_D = "speaker-level d (mean / SD over speakers of level minus other levels)"
CLIP_D = "clip-level (level mean - rest mean) / SD of all clips (fallback for a thin design)"
#: speakers holding a level and another that a speaker-level d needs (an SD over two is no estimate)
MIN_SPEAKERS = 3
#: bytes a select_units job holds per (clip, unit) of the block it ranks (the block, the float64
#: copies of every speaker's and each fold's clips, their cells): 14 measured on RAVDESS's design
#: with 1,000 permutations and 4 folds, with margin
BYTES_PER_VALUE = 24


def selection_columns(spec: CorpusSpec) -> list[str]:
    """Columns of ``selected_units.parquet`` before CARRIED; the target factor's column holds the level."""
    return ["site", "layer", "neuron", "reason", spec.target, "rank", "score", "score_name", "level_p",
            "level_q", "fold", "held_out", "heldout_d", "heldout_p", "heldout_q"]


@dataclass(frozen=True)
class SelectionSettings(FromConfig):
    """The ``selection`` section of the config (``fdr_alpha`` and ``permutations`` are ``stats``'s)."""

    SECTION: ClassVar[str] = "selection"

    top_k: int = 4
    explicit: list[dict] = field(default_factory=list)
    random_controls: int = 4
    seed: int = 0
    folds: int = 4
    require_selective: bool = True
    fdr_alpha: float = 0.05
    permutations: int = 1000
    min_clips_per_cell: int = 2


def speaker_folds(meta: pd.DataFrame, spec: CorpusSpec, folds: int, seed: int) -> dict:
    """speaker -> fold (0..n-1): a seeded shuffle dealt round robin, group level by group level, so
    every fold holds about as many speakers of each group level. n = min(folds, speakers)."""
    rng = np.random.default_rng(seed)
    speakers = meta.drop_duplicates(SPEAKER)
    n = min(folds, len(speakers))
    strata = ([speakers] if spec.group is None
              else [g for _, g in speakers.groupby(speakers[spec.group].astype(str), sort=True)])
    out, dealt = {}, 0
    for stratum in strata:
        for speaker in rng.permutation(stratum[SPEAKER].to_numpy()):
            out[speaker] = dealt % n
            dealt += 1
    return out


def clip_difference(x: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """[units] (mean of the ``inside`` clips - mean of the rest) / SD of all clips: defined with one
    clip on a side, where a pooled-SD d is not."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if not inside.any() or inside.all() or len(x) < 2:
            return np.full(x.shape[1], np.nan)
        return (x[inside].mean(axis=0) - x[~inside].mean(axis=0)) / x.std(axis=0, ddof=1)


def level_scores(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, levels: list
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(score [levels, units], speakers [levels]): the speaker-level d of each level.

    Within-speaker target: per speaker holding the level and another, the
    level's adjusted cell minus the mean of its other cells; mean / SD over
    those speakers. Between-speaker target: speaker means of the level's
    speakers against the others', (difference) / (average of the two SDs).
    NaN with fewer than two speakers (or two on a side).
    """
    rows, _ = speaker_rows(meta, spec, spec.target)
    values = rows.values(x)
    order = [lv for lv in spec.levels(spec.target) if lv in set(meta[spec.target])]
    scores = np.full((len(levels), x.shape[1]), np.nan)
    counts = np.zeros(len(levels), dtype=int)
    for i, level in enumerate(levels):
        code = order.index(level)
        if spec.factor(spec.target).varies == "between":
            a, b = values[rows.codes == code], values[rows.codes != code]
            counts[i] = len(a)
            if len(a) > 1 and len(b) > 1:
                spread = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / 2)
                with np.errstate(divide="ignore", invalid="ignore"):
                    scores[i] = (a.mean(axis=0) - b.mean(axis=0)) / spread
            continue
        contrasts = level_contrasts(values, rows, code)
        counts[i] = len(contrasts)
        if len(contrasts) > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                scores[i] = contrasts.mean(axis=0) / contrasts.std(axis=0, ddof=1)
    return scores, counts


def ranking_scores(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, levels: list
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(score [levels, units], speakers [levels]): :func:`level_scores`, with
    :func:`clip_difference` for a level that fewer than :data:`MIN_SPEAKERS` speakers hold
    beside another."""
    scores, speakers = level_scores(x, meta, spec, levels)
    for i, level in enumerate(levels):
        if speakers[i] < MIN_SPEAKERS:
            scores[i] = clip_difference(x, (meta[spec.target] == level).to_numpy())
    return scores, speakers


@dataclass(frozen=True)
class SpeakerParts:
    """What :func:`level_scores` is made of, per speaker of x's clips, so that the scores of a
    speaker resample are one gather away (:meth:`resampled`).

    Within-speaker target: per target level, each speaker's level contrast (the level's
    adjusted cell minus the mean of the speaker's other cells; cells are adjusted inside each
    speaker, so a speaker drawn twice brings the same contrast twice). Between-speaker target:
    each speaker's mean and level.
    """

    speakers: np.ndarray  # [S] names, sorted
    levels: list  # the target levels scored, in order
    within: bool
    parts: np.ndarray  # within: [levels, S, units] contrasts; between: [S, units] speaker means
    valid: np.ndarray  # within: [levels, S] the speaker holds the level and another; between: [levels, S] its level
    holds: np.ndarray  # [levels, S]: the speaker has clips at the level

    @classmethod
    def of(cls, x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, levels: list) -> "SpeakerParts":
        """From x [clips, units] and its clips' ``meta``."""
        rows, _ = speaker_rows(meta, spec, spec.target)
        values = rows.values(x)
        order = [lv for lv in spec.levels(spec.target) if lv in set(meta[spec.target])]
        speakers = np.unique(meta[SPEAKER].to_numpy())
        clip_speaker = np.searchsorted(speakers, meta[SPEAKER].to_numpy())
        target = meta[spec.target].to_numpy()
        holds = np.zeros((len(levels), len(speakers)), dtype=bool)
        for i, level in enumerate(levels):
            holds[i, np.unique(clip_speaker[target == level])] = True
        if spec.factor(spec.target).varies == "between":
            valid = np.stack([rows.codes == (order.index(level) if level in order else -1) for level in levels])
            return cls(speakers, list(levels), False, values, valid, holds)
        parts = np.zeros((len(levels), len(speakers), values.shape[1]))
        valid = np.zeros((len(levels), len(speakers)), dtype=bool)
        for i, level in enumerate(levels):
            if level not in order:
                continue
            code = order.index(level)
            for block in np.unique(rows.blocks):  # blocks are the sorted speakers' indices
                mine = rows.blocks == block
                at = mine & (rows.codes == code)
                if at.any() and mine.sum() > 1:
                    parts[i, block] = values[at][0] - values[mine & ~at].mean(axis=0)
                    valid[i, block] = True
        return cls(speakers, list(levels), True, parts, valid, holds)

    def resampled(self, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score [levels, units], speakers [levels]) of :func:`level_scores` on a resample whose
        speakers are ``drawn`` [S'] (indices into :attr:`speakers`; a speaker drawn twice counts
        twice); NaN for a level with fewer than two speakers (two on a side)."""
        scores = np.full((len(self.levels), self.parts.shape[-1]), np.nan)
        counts = np.zeros(len(self.levels), dtype=int)
        gathered = self.parts[..., drawn, :]  # the one gather of the resample
        for i in range(len(self.levels)):
            valid = self.valid[i, drawn]
            if self.within:
                contrasts = gathered[i] if valid.all() else gathered[i][valid]
                counts[i] = len(contrasts)
                if len(contrasts) > 1:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        scores[i] = contrasts.mean(axis=0) / contrasts.std(axis=0, ddof=1)
                continue
            a, b = gathered[valid], gathered[~valid]
            counts[i] = len(a)
            if len(a) > 1 and len(b) > 1:
                spread = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / 2)
                with np.errstate(divide="ignore", invalid="ignore"):
                    scores[i] = (a.mean(axis=0) - b.mean(axis=0)) / spread
        return scores, counts


def target_evidence(p_speaker: np.ndarray, p_perm: np.ndarray, df_den: int, test: str,
                    settings: SelectionSettings) -> pd.DataFrame | None:
    """The target factor's q_speaker, q_perm and selective over every unit
    (:func:`speechneurons.stats.selectivity.discoveries` of its test ``test``); None when the
    design leaves no test (``df_den`` < 1)."""
    if df_den < 1:
        return None
    return discoveries(p_speaker, p_perm, test, settings.fdr_alpha)


def level_tests(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, levels: list, settings: SelectionSettings,
                tail_flips: int) -> tuple[np.ndarray, np.ndarray]:
    """(p [levels, units], effect [levels, units]): :func:`two_sided_level_tests` made one-sided
    towards a raised level (a unit is named for a level it raises): p / 2 where the effect is
    positive, 1 - p / 2 elsewhere (the flip and t distributions are symmetric)."""
    p, effect = two_sided_level_tests(x, meta, spec, levels, settings, tail_flips)
    return np.where(effect > 0, p / 2, 1 - p / 2), effect


def two_sided_level_tests(x: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec, levels: list,
                          settings: SelectionSettings, tail_flips: int) -> tuple[np.ndarray, np.ndarray]:
    """(p [levels, units], effect [levels, units]): each level's one-vs-rest test over speakers for
    the units of x [clips, units], two-sided (:func:`level_tests` takes the side).

    Within-speaker target: per speaker, the level's cell minus the mean of its other cells
    (:func:`~speechneurons.stats.repeated.level_contrasts`, cells of at least
    ``min_clips_per_cell`` clips); p from sign flips of the speakers' contrasts (two-sided,
    exact for any symmetric contrast; the tail resolved to ``tail_flips``), or from the one-sample
    t over them where all 2^(n-1) flips stay above 1 / ``tail_flips``; effect: their mean.
    Between-speaker target: Welch's t of the level's speakers' means against the others'; effect:
    the difference. NaN where fewer than two speakers (two on a side) hold the level.
    """
    rows, _ = speaker_rows(meta, spec, spec.target)
    values = rows.values(x)
    order = [lv for lv in spec.levels(spec.target) if lv in set(meta[spec.target])]
    p = np.full((len(levels), x.shape[1]), np.nan)
    effect = np.full((len(levels), x.shape[1]), np.nan)
    for i, level in enumerate(levels):
        if level not in order:
            continue
        code = order.index(level)
        if spec.factor(spec.target).varies == "between":
            inside = rows.codes == code
            if inside.sum() > 1 and (~inside).sum() > 1:
                p[i] = stats.ttest_ind(values[inside], values[~inside], equal_var=False).pvalue
                effect[i] = values[inside].mean(axis=0) - values[~inside].mean(axis=0)
            continue
        contrasts = level_contrasts(values, rows, code, settings.min_clips_per_cell)  # [speakers, units]
        if len(contrasts) < 2:
            continue
        effect[i] = contrasts.mean(axis=0)
        total = (contrasts**2).sum(axis=0)
        ok = total > 0
        if not flips_exceed(len(contrasts), tail_flips - 1):  # all 2^(n-1) flips fewer than the tail needs
            # too few speakers for the flips to reach the threshold: the one-sample t over them
            with np.errstate(all="ignore"):
                p[i] = np.where(ok, stats.ttest_1samp(contrasts, 0.0).pvalue, np.nan)
            continue
        z = (contrasts / np.sqrt(np.where(ok, total, 1.0)))[:, None, :]
        observed = np.where(ok, z[:, 0].sum(axis=0) ** 2, np.nan)
        p[i] = np.where(ok, flip_pvalues(z, observed, settings.permutations, settings.seed + 11 + i,
                                         tail_flips), np.nan)
    return p, effect


def name_levels(p: np.ndarray, effect: np.ndarray, selected: int, units: int, alpha: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(q [levels, units], named [levels, units]) of :func:`level_tests` for units chosen among
    ``units`` by a test that selected ``selected``: Benjamini-Hochberg within each unit's levels,
    scaled by units / selected (Benjamini & Bogomolov 2014: BH at alpha R / m within each of the
    R selected families of m), capped at 1; named: q < alpha and a positive effect."""
    q = np.full(p.shape, np.nan)
    for unit in np.flatnonzero(np.isfinite(p).any(axis=0)):  # the selected units: the others have no test
        q[:, unit] = bh(p[:, unit])
    q = np.minimum(q * units / max(selected, 1), 1.0)
    return q, (q < alpha) & (effect > 0)


def rank_units(levels: list, scores: np.ndarray | None, speakers: np.ndarray | None, units: pd.DataFrame,
               spec: CorpusSpec, settings: SelectionSettings, evidence: pd.DataFrame | None, label: str,
               named: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[list[dict], list[str]]:
    """The top units per (site, layer) and target level, by :func:`ranking_scores` (scores
    [levels, units] and speakers [levels] of these clips; None when fewer than two levels).

    ``evidence``: the target factor's CARRIED columns for every unit (None:
    the design leaves no test, so the selective filter is dropped). ``named``:
    (level_p, level_q, named) [levels, units] of :func:`level_tests` and :func:`name_levels`
    (NaN / False for units not selective): with the selective filter, a level takes the units
    named for it. Returns (rows without fold / held_out, notes).
    """
    target = spec.target
    notes: list[str] = []
    if len(levels) < 2:
        return [], [f"selection ({label}): no units, the clips hold {len(levels)} level(s) of {target} "
                    "and a unit's preference needs two"]
    fallback = [lv for lv, n in zip(levels, speakers) if n < MIN_SPEAKERS]
    if fallback:
        notes.append(f"selection ({label}): {', '.join(map(str, fallback))}: fewer than {MIN_SPEAKERS} "
                     f"speakers hold the level and another, ranked by {CLIP_D}")
    filtered = settings.require_selective and evidence is not None and named is not None
    if settings.require_selective and not filtered:
        notes.append(f"selection ({label}): the design leaves no speaker-general test of {target}, "
                     "so units are ranked without the selective filter")
    short, rows = 0, []
    preferred = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=0)
    for i, level in enumerate(levels):
        score, name = scores[i], SPEAKER_D if speakers[i] >= MIN_SPEAKERS else CLIP_D
        eligible = np.isfinite(score)
        if filtered:
            eligible &= evidence["selective"].to_numpy() & named[2][i]
        else:
            eligible &= (score > 0) & (preferred == i)
        for (site, layer), group in units.groupby(["site", "layer"], sort=True):
            index = group.index.to_numpy()
            index = index[eligible[index]]
            best = index[np.argsort(-score[index], kind="stable")][: settings.top_k]
            short += len(best) < settings.top_k
            for rank, column in enumerate(best, start=1):
                row = {"site": site, "layer": int(layer), "neuron": int(units.at[column, "neuron"]),
                       target: level, "rank": rank, "score": float(score[column]), "score_name": name,
                       "level_p": float(named[0][i, column]) if filtered else np.nan,
                       "level_q": float(named[1][i, column]) if filtered else np.nan}
                if evidence is not None:
                    row.update(evidence.loc[column, CARRIED].to_dict())
                rows.append(row)
    if filtered and short:
        notes.append(f"selection ({label}): {short} of {len(levels) * units.groupby(['site', 'layer']).ngroups} "
                     f"(site, layer, {target}) groups have fewer than top_k = {settings.top_k} units that "
                     f"are selective for {target} and named for the level by its test "
                     "(selection.require_selective)")
    return rows, notes


@dataclass
class _Ranking:
    """What one set of clips (every speaker, or a fold's training speakers) ranks units by,
    gathered block by block: per block, :func:`ranking_scores`, the target's speaker-general p,
    and (folds) the scores on the held-out speakers."""

    meta: pd.DataFrame
    rows: np.ndarray  # [clips] bool: the clips of the source it uses
    levels: list
    test: bool  # compute the speaker-general test (for the selective filter)
    tail_flips: int = 0
    held_out: np.ndarray | None = None  # [clips] bool: the fold's held-out clips (folds only)
    held_meta: pd.DataFrame | None = None  # their meta
    scores: list = field(default_factory=list)
    speakers: np.ndarray | None = None
    p_speaker: list = field(default_factory=list)
    p_perm: list = field(default_factory=list)
    df_each: list = field(default_factory=list)
    df_den: int = 0
    test_name: str = ""
    heldout_scores: list = field(default_factory=list)

    def add(self, block: np.ndarray, spec: CorpusSpec, settings: SelectionSettings) -> None:
        x = block[self.rows]
        if len(self.levels) >= 2:
            scores, self.speakers = ranking_scores(x, self.meta, spec, self.levels)
            self.scores.append(scores)
        if self.held_out is not None and len(self.levels) >= 2:
            present = [lv for lv in self.levels if lv in set(self.held_meta[spec.target])]
            held = np.full((len(self.levels), block.shape[1]), np.nan)
            if len(present) >= 2:
                held[[self.levels.index(lv) for lv in present]] = level_scores(
                    block[self.held_out], self.held_meta, spec, present)[0]
            self.heldout_scores.append(held)
        if self.test:
            general, self.test_name = speaker_test(x, self.meta, spec, spec.target, settings.permutations,
                                                   settings.seed, self.tail_flips, settings.min_clips_per_cell)
            self.p_speaker.append(general["p_speaker"])
            self.p_perm.append(general["p_perm"])
            self.df_den = int(general["df_speaker_den"])
            if general["df_den_each"] is not None:
                self.df_each.append(general["df_den_each"])

    def evidence(self, settings: SelectionSettings) -> pd.DataFrame | None:
        """:func:`target_evidence` over every unit (None when not tested)."""
        if not self.test:
            return None
        df_den = median_df(np.concatenate(self.df_each)) if self.df_each else self.df_den
        return target_evidence(np.concatenate(self.p_speaker), np.concatenate(self.p_perm), df_den,
                               self.test_name, settings)

    def all_scores(self) -> np.ndarray | None:
        return np.concatenate(self.scores, axis=1) if self.scores else None

    def all_heldout_scores(self) -> np.ndarray | None:
        return np.concatenate(self.heldout_scores, axis=1) if self.heldout_scores else None


#: Columns and dtypes of ``replication.parquet``: per (site, layer), the cross-fitted rows' held-out tests
REPLICATION_SCHEMA = {
    "site": "str", "layer": "int32", "folds": "int64", "n_rows": "int64", "n_units": "int64", "n_tested": "int64",
    "n_replicated": "int64", "replication_rate": "float64", "spearman_train_heldout": "float64",
    "n_pairs": "int64",
}


def heldout_tests(chosen: pd.DataFrame, x_chosen: np.ndarray, meta: pd.DataFrame, spec: CorpusSpec,
                  folds: dict, settings: SelectionSettings) -> pd.DataFrame:
    """Columns heldout_d, heldout_p, heldout_q of the cross_fit rows of ``chosen`` (x_chosen
    [clips, rows] each row's unit): the row's level contrast on its fold's held-out speakers
    (:func:`level_contrasts`), d = mean / SD over them, p from the one-sample t over them
    (two-sided; a handful of held-out speakers leave sign flips no p below 2^-(n-1)); q: BH over
    every cross_fit row. NaN where fewer than two held-out speakers hold the level and another."""
    out = pd.DataFrame({"heldout_d": np.nan, "heldout_p": np.nan}, index=chosen.index)
    fold_of = meta[SPEAKER].map(folds).to_numpy()
    for fold in sorted(chosen["fold"].unique()):
        mine = (chosen["fold"] == fold).to_numpy()
        held = fold_of == fold
        held_meta = meta[held].reset_index(drop=True)
        rows, _ = speaker_rows(held_meta, spec, spec.target)
        values = rows.values(x_chosen[held][:, mine])
        order = [lv for lv in spec.levels(spec.target) if lv in set(held_meta[spec.target])]
        for j, (index, level) in enumerate(zip(chosen.index[mine], chosen.loc[mine, spec.target])):
            if level not in order:
                continue
            if spec.factor(spec.target).varies == "between":
                inside = rows.codes == order.index(level)
                a, b = values[inside, j], values[~inside, j]
                if len(a) > 1 and len(b) > 1:
                    out.loc[index, "heldout_d"] = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
                    out.loc[index, "heldout_p"] = stats.ttest_ind(a, b, equal_var=False).pvalue
                continue
            c = level_contrasts(values[:, j:j + 1], rows, order.index(level), settings.min_clips_per_cell)[:, 0]
            if len(c) > 1 and c.std(ddof=1) > 0:
                out.loc[index, "heldout_d"] = c.mean() / c.std(ddof=1)
                out.loc[index, "heldout_p"] = stats.ttest_1samp(c, 0.0).pvalue
    out["heldout_q"] = bh(out["heldout_p"].to_numpy())
    return out


def replication(chosen: pd.DataFrame, pairs: list[pd.DataFrame], settings: SelectionSettings) -> pd.DataFrame:
    """Per (site, layer) with cross_fit rows: how many rows the held-out speakers could test
    (``n_tested``), how many of those replicate (heldout_q below alpha with the training sign),
    their share (NaN only when no row could be tested), and the Spearman correlation of every unit's
    training score with its held-out score over the folds' (unit, level) pairs (``pairs``: frames
    of site, layer, train, heldout)."""
    rows = []
    crossed = chosen[chosen["reason"] == "cross_fit"]
    every = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=["site", "layer", "train", "heldout"])
    for (site, layer), part in crossed.groupby(["site", "layer"], sort=True):
        replicated = (part["heldout_q"] < settings.fdr_alpha) & (part["heldout_d"] > 0)
        both = every[(every["site"] == site) & (every["layer"] == layer)].dropna()
        varied = len(both) > 2 and both["train"].nunique() > 1 and both["heldout"].nunique() > 1
        tested = int(part["heldout_p"].notna().sum())
        rows.append({"site": site, "layer": int(layer), "folds": int(part["fold"].nunique()),
                     "n_rows": len(part), "n_units": int(part["neuron"].nunique()), "n_tested": tested,
                     "n_replicated": int(replicated.sum()),
                     "replication_rate": float(replicated.sum() / tested) if tested else np.nan,
                     "spearman_train_heldout": float(spearmanr(both["train"], both["heldout"]).statistic)
                     if varied else np.nan, "n_pairs": len(both)})
    return pd.DataFrame(rows, columns=list(REPLICATION_SCHEMA)).astype(
        {k: v for k, v in REPLICATION_SCHEMA.items() if v != "str"})


def select_units(source: UnitBlocks, clips: pd.DataFrame, selectivity: pd.DataFrame,
                 spec: CorpusSpec, settings: SelectionSettings) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(one row per (unit, reason[, fold]) with :func:`selection_columns` + CARRIED; the
    :func:`replication` table; notes).

    top_k: chosen on every speaker (module docstring), the evidence from
    ``selectivity``, the level tests on every speaker. cross_fit: per fold, chosen on the other
    folds' speakers (their own speaker-general test and level tests), ``held_out`` the fold's
    speakers (as strings), tested there (:func:`heldout_tests`). explicit:
    ``selection.explicit`` as given. random_control: per (site, layer) that
    has a chosen unit, ``random_controls`` other units of that layer drawn
    with ``seed`` (score NaN). ``fold`` is -1 on every row but cross_fit.
    ``source`` is read one block of units at a time (the rows equal those of
    the whole matrix bit for bit).
    """
    target = spec.target
    columns = selection_columns(spec)
    meta = clips.set_index("clip_id").loc[source.clip_ids].reset_index()
    units = source.units.reset_index(drop=True)
    notes: list[str] = []
    rows: list[dict] = []
    pairs: list[pd.DataFrame] = []
    folds: dict = {}
    tail_flips = tail_flips_for(len(units), settings.fdr_alpha)
    if settings.top_k > 0:
        def levels_of(part: pd.DataFrame) -> list:
            return [lv for lv in spec.levels(target) if lv in set(part[target])]

        everyone = _Ranking(meta, np.ones(len(meta), dtype=bool), levels_of(meta), test=False)
        folds = speaker_folds(meta, spec, settings.folds, settings.seed)
        fold_rankings = []
        if len(set(folds.values())) >= 2:
            fold_of = meta[SPEAKER].map(folds).to_numpy()
            for fold in range(max(folds.values()) + 1):
                train = fold_of != fold
                part = meta[train].reset_index(drop=True)
                fold_rankings.append(_Ranking(part, train, levels_of(part), test=settings.require_selective,
                                              tail_flips=tail_flips, held_out=~train,
                                              held_meta=meta[~train].reset_index(drop=True)))
        for i in tqdm(range(len(source.bounds)), desc="selection", unit="block", disable=len(source.bounds) == 1):
            block = source.block(i)
            for ranking in [everyone, *fold_rankings]:
                ranking.add(block, spec, settings)
            del block
        study = selectivity[selectivity["factor"] == target]
        evidence = None
        if len(study) and study["df_speaker_den"].iloc[0] >= 1:
            evidence = units.merge(study[["site", "layer", "neuron", *CARRIED]].astype(
                {"layer": "int32", "neuron": "int32"}), on=["site", "layer", "neuron"], how="left")
            evidence["selective"] = evidence["selective"].fillna(False).astype(bool)
        rankings = [(everyone, evidence, "all speakers")]
        rankings += [(r, r.evidence(settings), f"fold {f}") for f, r in enumerate(fold_rankings)]
        # the level tests of every ranking's selective units, on that ranking's clips, in one read
        wanted = np.unique(np.concatenate([np.zeros(0, dtype=np.int64)] + [
            np.flatnonzero(ev["selective"].to_numpy()) for _, ev, _ in rankings
            if ev is not None and settings.require_selective]))
        gathered = source.columns(wanted) if len(wanted) else np.zeros((len(meta), 0))
        for fold, (ranking, ranked_evidence, label) in enumerate(rankings, start=-1):
            named = None
            if ranked_evidence is not None and settings.require_selective and len(ranking.levels) >= 2:
                selective = np.flatnonzero(ranked_evidence["selective"].to_numpy())
                level_p = np.full((len(ranking.levels), len(units)), np.nan)
                effect = np.full_like(level_p, np.nan)
                if len(selective):
                    cap = tail_flips_for(int(np.ceil(len(units) * len(ranking.levels) / len(selective))),
                                         settings.fdr_alpha)
                    x = gathered[ranking.rows][:, np.searchsorted(wanted, selective)]
                    level_p[:, selective], effect[:, selective] = level_tests(
                        x, ranking.meta, spec, ranking.levels, settings, cap)
                level_q, is_named = name_levels(level_p, effect, len(selective), len(units), settings.fdr_alpha)
                named = (level_p, level_q, is_named)
            chosen, why = rank_units(ranking.levels, ranking.all_scores(), ranking.speakers, units, spec,
                                     settings, ranked_evidence, label, named)
            notes += why
            if fold < 0:
                rows += [{**r, "reason": "top_k", "fold": -1, "held_out": []} for r in chosen]
                continue
            held_out = sorted(str(s) for s, f in folds.items() if f == fold)
            rows += [{**r, "reason": "cross_fit", "fold": fold, "held_out": held_out} for r in chosen]
            heldout = ranking.all_heldout_scores()
            train = ranking.all_scores()
            if heldout is not None and train is not None:
                for i, _ in enumerate(ranking.levels):
                    pairs.append(pd.DataFrame({"site": units["site"], "layer": units["layer"],
                                               "train": train[i], "heldout": heldout[i]}))
        if not fold_rankings:
            notes.append(f"selection: no cross_fit rows, selection.folds = {settings.folds} and "
                         f"{len(folds)} speaker(s) leave fewer than two folds")
    known = set(map(tuple, units[["site", "layer", "neuron"]].itertuples(index=False)))
    for i, item in enumerate(settings.explicit):
        key = (str(item.get("site", "hidden")), int(item["layer"]), int(item["neuron"]))
        if key not in known:
            raise ValueError(f"selection.explicit[{i}]: unit {key} is not in the activation cache")
        rows.append({"site": key[0], "layer": key[1], "neuron": key[2], "reason": "explicit",
                     target: None, "rank": i + 1, "score": np.nan, "score_name": "", "fold": -1,
                     "held_out": []})
    chosen = pd.DataFrame(rows, columns=columns + CARRIED)
    crossed = (chosen["reason"] == "cross_fit").to_numpy()
    if crossed.any():
        index = units.reset_index().merge(chosen.loc[crossed, ["site", "layer", "neuron"]].astype(
            {"layer": "int32", "neuron": "int32"}), on=["site", "layer", "neuron"], how="right")["index"].to_numpy()
        tested = heldout_tests(chosen[crossed], source.columns(np.unique(index))[:, np.searchsorted(
            np.unique(index), index)], meta, spec, folds, settings)
        chosen.loc[crossed, ["heldout_d", "heldout_p", "heldout_q"]] = tested.to_numpy()
    replicated = replication(chosen, pairs, settings)
    rng = np.random.default_rng(settings.seed)
    controls = []
    for (site, layer), picked in chosen.groupby(["site", "layer"], sort=True):
        pool = units[(units["site"] == site) & (units["layer"] == layer)
                     & ~units["neuron"].isin(picked["neuron"])]["neuron"].to_numpy()
        draw = rng.choice(pool, size=min(settings.random_controls, len(pool)), replace=False)
        for rank, neuron in enumerate(sorted(draw), start=1):
            controls.append({"site": site, "layer": int(layer), "neuron": int(neuron),
                             "reason": "random_control", target: None, "rank": rank,
                             "score": np.nan, "score_name": "", "fold": -1, "held_out": []})
    out = pd.concat([chosen, pd.DataFrame(controls, columns=columns)], ignore_index=True)
    if out.empty:
        notes.append("selection: no unit selected (top_k, cross_fit, explicit and random_controls give none), so "
                     "the ablation, the knock-out and the tables of selected units have nothing to test; to "
                     "ablate anyway, selection.require_selective: false ranks every unit, ablation.units_from: "
                     "config takes ablation.sites/layers/neurons, and selection.explicit names units")
    notes = merge_notes(notes)
    # top_k rows carry the evidence from the study's table; explicit and random rows take it from there too
    study = selectivity.loc[selectivity["factor"] == target, ["site", "layer", "neuron", *CARRIED]].astype(
        {"layer": "int32", "neuron": "int32"})
    out = out.astype({"layer": "int32", "neuron": "int32", "rank": "int32", "fold": "int32"})
    own = out["reason"] == "cross_fit"
    merged = out.drop(columns=CARRIED).merge(study, on=["site", "layer", "neuron"], how="left")
    merged["selective"] = merged["selective"].astype("boolean")
    if own.any():
        for column in CARRIED:
            merged.loc[own.to_numpy(), column] = out.loc[own, column].to_numpy()
    for column in ("level_p", "level_q", "heldout_d", "heldout_p", "heldout_q"):
        merged[column] = merged[column].astype("float64")
    return merged, replicated, notes


def merge_notes(notes: list[str]) -> list[str]:
    """'selection (<where>): <text>' notes with the same text as one note naming every place."""
    places: dict[str, list[str]] = {}
    plain = []
    for note in notes:
        if note.startswith("selection (") and "): " in note:
            where, text = note[len("selection ("):].split("): ", 1)
            places.setdefault(text, []).append(where)
        else:
            plain.append(note)
    return [f"selection ({', '.join(where)}): {text}" for text, where in places.items()] + plain
