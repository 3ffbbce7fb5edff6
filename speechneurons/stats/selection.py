"""Which units to ablate: top units per (layer, target level), chosen on some speakers, tested on others.

A unit is ranked for a level of the target factor by an effect that holds
across speakers: per speaker, the level's cell minus the mean of the
speaker's other cells (cells adjusted for the other within-speaker factors,
as the speaker-general test adjusts them), summarised over speakers as
``score`` = mean / SD (the speaker-level d, d_z). A unit that moves a little
in every speaker outranks one that moves a lot in a few. By default
(``require_selective``) a level takes only units that the speaker-general
test calls selective for the target factor (q and permutation p below
``fdr_alpha``) and that prefer it (their largest score is this level's, and
it is positive), so a level may get fewer than ``top_k`` (the notes count
them).

Selection happens twice:

- ``top_k``: on every speaker, for figures, the listening page and the unit
  browser. These rows name units; no test of them is computed on the same
  speakers.
- ``cross_fit``: the speakers are dealt into ``folds`` folds, balanced by
  the corpus's between-speaker group factor; in fold f the units are chosen
  on the other folds' speakers and listed with f's speakers in
  ``held_out``. Knock-out, question 2 and the bootstrap interval test a
  ``cross_fit`` row on its held-out speakers only (Kriegeskorte et al. 2009
  on circular analysis; cross-fitting as in Chernozhukov et al. 2018).

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
from tqdm.auto import tqdm

from speechneurons.cache import UnitBlocks
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.fdr import bh
from speechneurons.stats.repeated import level_contrasts, median_df
from speechneurons.stats.selectivity import speaker_rows, speaker_test
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
    return ["site", "layer", "neuron", "reason", spec.target, "rank", "score", "score_name", "fold",
            "held_out"]


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


def target_evidence(p_speaker: np.ndarray, p_perm: np.ndarray, df_den: int, settings: SelectionSettings
                    ) -> pd.DataFrame | None:
    """The target factor's q_speaker, q_perm (BH over every unit) and selective from its
    speaker-general p-values; None when the design leaves no test (``df_den`` < 1)."""
    if df_den < 1:
        return None
    q_speaker, q_perm = bh(p_speaker), bh(p_perm)
    return pd.DataFrame({"q_speaker": q_speaker, "q_perm": q_perm,
                         "selective": (q_speaker < settings.fdr_alpha) & (p_perm < settings.fdr_alpha)})


def rank_units(levels: list, scores: np.ndarray | None, speakers: np.ndarray | None, units: pd.DataFrame,
               spec: CorpusSpec, settings: SelectionSettings, evidence: pd.DataFrame | None, label: str
               ) -> tuple[list[dict], list[str]]:
    """The top units per (site, layer) and target level, by :func:`ranking_scores` (scores
    [levels, units] and speakers [levels] of these clips; None when fewer than two levels).

    ``evidence``: the target factor's CARRIED columns for every unit (None:
    the design leaves no test, so the selective filter is dropped). Returns
    (rows without fold / held_out, notes).
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
    filtered = settings.require_selective and evidence is not None
    if settings.require_selective and evidence is None:
        notes.append(f"selection ({label}): the design leaves no speaker-general test of {target}, "
                     "so units are ranked without the selective filter")
    short, rows = 0, []
    preferred = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=0)
    for i, level in enumerate(levels):
        score, name = scores[i], SPEAKER_D if speakers[i] >= MIN_SPEAKERS else CLIP_D
        eligible = np.isfinite(score)
        if filtered:
            eligible &= evidence["selective"].to_numpy() & (score > 0) & (preferred == i)
        for (site, layer), group in units.groupby(["site", "layer"], sort=True):
            index = group.index.to_numpy()
            index = index[eligible[index]]
            best = index[np.argsort(-score[index], kind="stable")][: settings.top_k]
            short += len(best) < settings.top_k
            for rank, column in enumerate(best, start=1):
                row = {"site": site, "layer": int(layer), "neuron": int(units.at[column, "neuron"]),
                       target: level, "rank": rank, "score": float(score[column]), "score_name": name}
                if evidence is not None:
                    row.update(evidence.loc[column, CARRIED].to_dict())
                rows.append(row)
    if filtered and short:
        notes.append(f"selection ({label}): {short} of {len(levels) * units.groupby(['site', 'layer']).ngroups} "
                     f"(site, layer, {target}) groups have fewer than top_k = {settings.top_k} units that "
                     f"are selective for {target} with a positive score (selection.require_selective)")
    return rows, notes


@dataclass
class _Ranking:
    """What one set of clips (every speaker, or a fold's training speakers) ranks units by,
    gathered block by block: per block, :func:`ranking_scores` and the target's speaker-general p."""

    meta: pd.DataFrame
    rows: np.ndarray  # [clips] bool: the clips of the source it uses
    levels: list
    test: bool  # compute the speaker-general test (for the selective filter)
    scores: list = field(default_factory=list)
    speakers: np.ndarray | None = None
    p_speaker: list = field(default_factory=list)
    p_perm: list = field(default_factory=list)
    df_each: list = field(default_factory=list)
    df_den: int = 0

    def add(self, block: np.ndarray, spec: CorpusSpec, settings: SelectionSettings) -> None:
        x = block[self.rows]
        if len(self.levels) >= 2:
            scores, self.speakers = ranking_scores(x, self.meta, spec, self.levels)
            self.scores.append(scores)
        if self.test:
            general, _ = speaker_test(x, self.meta, spec, spec.target, settings.permutations, settings.seed)
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
        return target_evidence(np.concatenate(self.p_speaker), np.concatenate(self.p_perm), df_den, settings)

    def all_scores(self) -> np.ndarray | None:
        return np.concatenate(self.scores, axis=1) if self.scores else None


def select_units(source: UnitBlocks, clips: pd.DataFrame, selectivity: pd.DataFrame,
                 spec: CorpusSpec, settings: SelectionSettings) -> tuple[pd.DataFrame, list[str]]:
    """(one row per (unit, reason[, fold]) with :func:`selection_columns` + CARRIED; notes).

    top_k: chosen on every speaker (module docstring), the evidence from
    ``selectivity``. cross_fit: per fold, chosen on the other folds'
    speakers, ``held_out`` the fold's speakers (as strings). explicit:
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
                fold_rankings.append(_Ranking(part, train, levels_of(part), test=settings.require_selective))
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
        chosen, why = rank_units(everyone.levels, everyone.all_scores(), everyone.speakers, units, spec,
                                 settings, evidence, "all speakers")
        rows += [{**r, "reason": "top_k", "fold": -1, "held_out": []} for r in chosen]
        notes += why
        if not fold_rankings:
            notes.append(f"selection: no cross_fit rows, selection.folds = {settings.folds} and "
                         f"{len(folds)} speaker(s) leave fewer than two folds")
        for fold, ranking in enumerate(fold_rankings):
            held_out = sorted(str(s) for s, f in folds.items() if f == fold)
            chosen, why = rank_units(ranking.levels, ranking.all_scores(), ranking.speakers, units, spec,
                                     settings, ranking.evidence(settings), f"fold {fold}")
            rows += [{**r, "reason": "cross_fit", "fold": fold, "held_out": held_out} for r in chosen]
            notes += why
    known = set(map(tuple, units[["site", "layer", "neuron"]].itertuples(index=False)))
    for i, item in enumerate(settings.explicit):
        key = (str(item.get("site", "hidden")), int(item["layer"]), int(item["neuron"]))
        if key not in known:
            raise ValueError(f"selection.explicit[{i}]: unit {key} is not in the activation cache")
        rows.append({"site": key[0], "layer": key[1], "neuron": key[2], "reason": "explicit",
                     target: None, "rank": i + 1, "score": np.nan, "score_name": "", "fold": -1,
                     "held_out": []})
    chosen = pd.DataFrame(rows, columns=columns + CARRIED)
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
        notes.append("selection: no unit selected (top_k, cross_fit, explicit and random_controls give none)")
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
    return merged, notes


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
