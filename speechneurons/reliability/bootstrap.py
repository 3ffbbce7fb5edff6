"""Stability of the selected units over speakers, and their effect on speakers that did not choose them.

Stability: speakers are drawn with replacement (within each level of the
corpus's between-speaker group factor, when it has one, so every resample
keeps the design's balance), every drawn speaker bringing all their clips
as a speaker of its own. On each resample the study-wide ranking is redone
(:func:`speechneurons.stats.selection.ranking_scores`, the speaker-level d,
without the selective filter, which would need the permutation test per
resample): per (site, layer) and target level, the top k. Reported: per
(site, layer, level) the mean Jaccard index of the resampled top k with the
study's, and per ``top_k`` unit the share of resamples that keep it (Efron
& Tibshirani 1993; Field & Welsh 2007 for resampling clusters). These rows
give no interval: their units were chosen on every speaker.

Effect: per ``cross_fit`` unit, the paired level contrast of its pooled
activation (the level's cell minus the mean of the other cells, per
held-out speaker) with a 95 % t-interval over the held-out speakers. A
percentile bootstrap over the 3-12 speakers of a fold covers too rarely
(about 85 % at six speakers), the t-interval holds its level under normal
contrasts (``bench/calibration.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from speechneurons.cache import RESERVED_GIB, ActivationCache, UnitBlocks, unit_columns
from speechneurons.datasets.spec import SPEAKER, CorpusSpec
from speechneurons.stats.intervals import t_interval
from speechneurons.settings import FromConfig


@dataclass(frozen=True)
class BootstrapSettings(FromConfig):
    """``reliability.bootstrap``; ``top_k`` is the selection's."""

    SECTION: ClassVar[str] = "reliability.bootstrap"

    resamples: int = 200
    top_k: int = 4
    seed: int = 0


def resample_speakers(meta: pd.DataFrame, spec: CorpusSpec, rng: np.random.Generator) -> np.ndarray:
    """The speakers of one speaker bootstrap sample [speakers], stratified by the group factor
    when there is one; a speaker may come more than once (each draw a speaker of its own)."""
    speakers = meta.drop_duplicates(SPEAKER)
    strata = [speakers] if spec.group is None else [g for _, g in speakers.groupby(spec.group, dropna=False)]
    return np.concatenate([rng.choice(s[SPEAKER].to_numpy(), size=len(s), replace=True) for s in strata])


UNIT_COLUMNS = ["site", "layer", "neuron", "fold", "chosen_on", "kept", "resamples", "effect", "effect_dz",
                "effect_low", "effect_high", "n_speakers_tested"]


def held_out_effects(source: UnitBlocks, meta: pd.DataFrame, selected: pd.DataFrame,
                     spec: CorpusSpec) -> list[dict]:
    """Per cross_fit row: the paired level contrast of the unit's activation on its held-out
    speakers, mean, d_z and 95 % t-interval (see the module docstring)."""
    from speechneurons.questions import paired_level_contrast

    target = spec.target
    rows = []
    speakers = meta[SPEAKER].astype(str).to_numpy()
    chosen = selected[selected["reason"] == "cross_fit"]
    index = unit_columns(source.units, chosen)
    x = source.columns(index) if len(index) else None
    for i, row in enumerate(chosen.itertuples(index=False)):
        held = np.isin(speakers, list(row.held_out))
        values = x[held, i].astype(np.float64)
        level = getattr(row, target)
        contrast = (paired_level_contrast(values, meta[held].reset_index(drop=True), spec, level)
                    if spec.factor(target).varies == "within" else np.array([]))
        low, high = t_interval(contrast)
        sd = contrast.std(ddof=1) if len(contrast) > 1 else np.nan
        rows.append({"site": row.site, "layer": int(row.layer), "neuron": int(row.neuron), target: level,
                     "fold": int(row.fold), "chosen_on": f"speakers outside fold {row.fold}",
                     "kept": np.nan, "resamples": 0,
                     "effect": float(contrast.mean()) if len(contrast) else np.nan,
                     "effect_dz": float(contrast.mean() / sd) if sd and sd > 0 else np.nan,
                     "effect_low": low, "effect_high": high, "n_speakers_tested": len(contrast)})
    return rows


def bootstrap_blocks(cache: ActivationCache, memory_gib: float):
    """:meth:`ActivationCache.blocks` for :func:`speaker_bootstrap`: blocks that fit ``memory_gib``
    beside one layer's resampling (its float64 clips and a few copies)."""
    widest = int(cache.units.groupby(["site", "layer"]).size().max())
    return cache.blocks(4, memory_gib, RESERVED_GIB + 4 * len(cache.clip_ids) * widest * 8 / 2**30)


def speaker_bootstrap(source: UnitBlocks, clips: pd.DataFrame, selected: pd.DataFrame,
                      spec: CorpusSpec, settings: BootstrapSettings, progress: bool = True
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(per selected unit, per (site, layer, level), notes).

    Unit rows (:data:`UNIT_COLUMNS` and the target factor): ``top_k`` rows
    with kept (share of resamples in which the unit is still in its level's
    top k); ``cross_fit`` rows with effect, effect_dz and effect_low/high on
    the fold's held-out speakers. Layer rows: mean_jaccard and its 2.5/97.5 %
    quantiles over resamples.
    """
    from speechneurons.stats.selection import MIN_SPEAKERS, SpeakerParts, clip_difference

    target = spec.target
    top = selected[selected["reason"] == "top_k"]
    notes = []
    unit_cols = UNIT_COLUMNS[:3] + [target] + UNIT_COLUMNS[3:]
    layer_cols = ["site", "layer", target, "top_k", "mean_jaccard", "jaccard_low", "jaccard_high", "resamples"]
    meta = clips.set_index("clip_id").loc[source.clip_ids].reset_index()
    effects = held_out_effects(source, meta, selected, spec)
    if top.empty or settings.resamples < 1:
        notes.append("bootstrap: no top_k unit was selected, nothing to resample" if top.empty
                     else "bootstrap: reliability.bootstrap.resamples is 0")
        return (pd.DataFrame(effects, columns=unit_cols), pd.DataFrame(columns=layer_cols), notes)
    units = source.units.reset_index(drop=True)
    levels = [lv for lv in spec.levels(target) if lv in set(top[target])]
    groups = list(top.groupby(["site", "layer"], sort=True))
    columns = {key: units.index[(units["site"] == key[0]) & (units["layer"] == key[1])].to_numpy()
               for key, _ in groups}
    study = {(key, lv): set(chosen.loc[chosen[target] == lv, "neuron"]) for key, chosen in groups for lv in levels}
    kept = {(key, lv): np.zeros(len(columns[key])) for key, _ in groups for lv in levels}
    jaccard: dict = {k: [] for k in study}
    # the resamples, drawn once for every layer: (speakers drawn, levels present, too few speakers)
    rng = np.random.default_rng(settings.seed)
    speaker_names = np.unique(meta[SPEAKER].to_numpy())
    holds = (pd.crosstab(meta[SPEAKER], meta[target]) > 0)
    held = holds.loc[speaker_names].to_numpy()  # [speakers, levels of the clips]
    level_held = {lv: holds[lv].loc[speaker_names].to_numpy() if lv in holds.columns else
                  np.zeros(len(speaker_names), dtype=bool) for lv in levels}
    resamples = []
    for _ in range(settings.resamples):
        drawn = np.searchsorted(speaker_names, resample_speakers(meta, spec, rng))
        present = [lv for lv in levels if level_held[lv][drawn].any()]
        resamples.append((drawn, present if held[drawn].any(axis=0).sum() >= 2 else []))
    clip_speaker = np.searchsorted(speaker_names, meta[SPEAKER].to_numpy())
    # a layer at a time: per speaker, the parts of the ranking score, once; a resample is then one gather
    for key, _ in tqdm(groups, desc="speaker bootstrap", unit="layer", disable=not progress):
        x = source.columns(columns[key])
        parts = SpeakerParts.of(x, meta, spec, levels)
        neurons = units.loc[columns[key], "neuron"].to_numpy()
        for drawn, present in resamples:
            if not present:
                continue
            scores, counts = parts.resampled(drawn)
            few = [lv for lv in present if counts[levels.index(lv)] < MIN_SPEAKERS]
            if few:  # ranking_scores' fallback, on the resample's clips
                rows = np.concatenate([np.flatnonzero(clip_speaker == d) for d in drawn])
                inside = meta[target].to_numpy()[rows]
                for lv in few:
                    scores[levels.index(lv)] = clip_difference(x[rows], inside == lv)
            for lv in present:
                score = np.nan_to_num(scores[levels.index(lv)], nan=-np.inf)
                if not np.isfinite(score).any():
                    continue
                best = np.argsort(-score, kind="stable")[: settings.top_k]
                picked = set(neurons[best])
                jaccard[(key, lv)].append(len(picked & study[(key, lv)]) / max(len(picked | study[(key, lv)]), 1))
                kept[(key, lv)][best] += 1
    unit_rows, layer_rows, skipped = [], [], []
    for key, chosen in groups:
        neurons = units.loc[columns[key], "neuron"].to_numpy()
        for lv in levels:
            if not study[(key, lv)]:
                continue
            n = len(jaccard[(key, lv)])
            for neuron in sorted(study[(key, lv)]):
                col = int(np.flatnonzero(neurons == neuron)[0])
                unit_rows.append({"site": key[0], "layer": int(key[1]), "neuron": int(neuron), target: lv,
                                  "fold": -1, "chosen_on": "all speakers",
                                  "kept": kept[(key, lv)][col] / n if n else np.nan, "resamples": n,
                                  "effect": np.nan, "effect_dz": np.nan, "effect_low": np.nan,
                                  "effect_high": np.nan, "n_speakers_tested": 0})
            j = np.array(jaccard[(key, lv)])
            layer_rows.append({"site": key[0], "layer": int(key[1]), target: lv, "top_k": len(study[(key, lv)]),
                               "mean_jaccard": float(j.mean()) if n else np.nan,
                               "jaccard_low": float(np.quantile(j, 0.025)) if n else np.nan,
                               "jaccard_high": float(np.quantile(j, 0.975)) if n else np.nan,
                               "resamples": n})
            skipped.append(settings.resamples - n)
    if max(skipped, default=0):
        notes.append(f"bootstrap: up to {max(skipped)} of {settings.resamples} resamples per (site, layer, "
                     f"{target} level) could not rank the level and were skipped; the table's resamples "
                     "column gives the number used")
    return (pd.DataFrame(unit_rows + effects, columns=unit_cols), pd.DataFrame(layer_rows, columns=layer_cols),
            notes)
