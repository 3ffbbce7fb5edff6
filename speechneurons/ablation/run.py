"""The ablation stage: a shard of clips -> attribution arrays, segment index, summaries."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.ablation.baselines import make_baseline
from speechneurons.ablation.engine import ResolvedUnits, Units, ablate_clip, gated_forward, unit_values
from speechneurons.ablation.reductions import make_reduction
from speechneurons.ablation.segments import Segments, make_segments, segment_levels_db
from speechneurons.ablation.summary import SUMMARY_SCHEMA, summarise
from speechneurons.audio import load_waveform
from speechneurons.combination import Combination
from speechneurons.failures import ClipFailures
from speechneurons.models import SpeechModel
from speechneurons.schemas import SEGMENT_SCHEMA, empty_table
from speechneurons.settings import ABLATION_UNITS, check_section
from speechneurons.integrity import read_parquet

log = logging.getLogger(__name__)


def requested_units(ablation: Mapping[str, Any], selected: str | Path | None) -> Units | pd.DataFrame:
    """The units the ``ablation`` section asks for (its :data:`~speechneurons.settings.ABLATION_UNITS`): the units of the
    selection table ``selected`` when ``units_from`` is ``selection``, else the config's
    sites x layers x neurons."""
    if ablation["units_from"] == "selection":
        return selected_units(selected)
    return Units.from_config(ablation["sites"], ablation["layers"], ablation["neurons"])


@dataclass(frozen=True)
class AblationSettings:
    """One ablation job's settings: its units, its parameter combination (a folder of
    results), the engine's batch and the baseline's seed."""

    units: Units | pd.DataFrame = field(default_factory=Units)
    combination: Combination = Combination("zero", 20, "mean")
    perturbations_per_eval: int = 16
    seed: int = 0
    loudness_threshold_db: float = -35.0

    #: The ``ablation`` keys :meth:`from_config` reads (a rule passes exactly these).
    CONFIG_KEYS: ClassVar[tuple[str, ...]] = (*ABLATION_UNITS, "seed", "loudness_threshold_db")

    @classmethod
    def from_config(cls, ablation: Mapping[str, Any], combination: Mapping[str, Any],
                    perturbations_per_eval: int, selected: str | Path | None = None) -> "AblationSettings":
        """From the ``ablation`` section (exactly :data:`CONFIG_KEYS`), a combination
        (baseline, segment_ms, reduction: the job's wildcards), ``compute.perturbations_per_eval``
        and the selection table's path (read when ``units_from`` is ``selection``)."""
        check_section(cls.__name__, "ablation", set(ablation), set(cls.CONFIG_KEYS))
        return cls(units=requested_units(ablation, selected), combination=Combination.from_config(combination),
                   perturbations_per_eval=int(perturbations_per_eval), seed=int(ablation["seed"]),
                   loudness_threshold_db=float(ablation["loudness_threshold_db"]))

    def resolve_units(self, model: SpeechModel) -> ResolvedUnits:
        """The config's sites x layers x neurons, or an explicit unit table."""
        if isinstance(self.units, pd.DataFrame):
            return ResolvedUnits.from_table(self.units, model, "units")
        return self.units.resolve(model)


@dataclass
class PreparedClip:
    """One clip as the ablation sees it: waveform and baseline [samples], its segments."""

    clip_id: str
    waveform: torch.Tensor
    baseline: torch.Tensor
    segments: Segments

    def forward(self, model: SpeechModel, units: ResolvedUnits, reduction: str):
        """gates [batch, segments] -> unit values [batch, units] (see ablation.engine.gated_forward)."""
        reduce = make_reduction(reduction, model.frames_per_second)
        return gated_forward(self.waveform.to(model.device), self.baseline.to(model.device),
                             self.segments.sample_to_segment(model.device),
                             lambda audio: unit_values(model, audio, units, reduce))


def prepare_clip(model: SpeechModel, clip, dataset_root: str | Path, combination: Combination,
                 seed: int) -> PreparedClip:
    """Load ``clip`` (clip_id, path) at the model's rate and build its segments and baseline
    (``combination``'s segment length and baseline)."""
    x = torch.from_numpy(load_waveform(Path(dataset_root) / clip.path, model.sample_rate))
    segments = make_segments(len(x), combination.segment_ms, model.sample_rate, model.hop_samples)
    base = make_baseline(combination.baseline, x, model.sample_rate, seed, clip.clip_id)
    return PreparedClip(clip.clip_id, x, base.to(x.dtype), segments)


#: the note of an ablation job whose selection names no unit (an empty selection is a result)
NOTHING_SELECTED = ("ablation: the selection names no unit, so nothing was ablated (the study's design "
                    "gives the selectivity statistics nothing to rank, or no unit is selective for the target "
                    "factor: see the selection's notes). To ablate anyway: selection.require_selective: false "
                    "ranks every unit, ablation.units_from: config takes ablation.sites/layers/neurons, "
                    "selection.explicit names units")


def selected_units(path: str | Path) -> pd.DataFrame:
    """The units of ``selected_units.parquet`` (site, layer, neuron), each once; empty when the
    selection names none (:func:`ablate_clips` then ablates nothing and says why)."""
    return read_parquet(path)[["site", "layer", "neuron"]].drop_duplicates().reset_index(drop=True)


@dataclass
class ShardResult:
    """What one ablation job produces."""

    curves: dict[str, np.ndarray]  # clip_id -> [units, segments] float32
    units: pd.DataFrame  # site, layer, neuron: row i of every curve array
    segments: pd.DataFrame  # SEGMENT_SCHEMA
    summary: pd.DataFrame  # SUMMARY_SCHEMA
    failed: pd.DataFrame  # FAILED_SCHEMA: clips that raised (the others went on)


def ablate_clips(
    model: SpeechModel,
    clips: pd.DataFrame,
    dataset_root: str | Path,
    settings: AblationSettings,
    progress: bool = True,
) -> ShardResult:
    """Ablate every clip of ``clips`` (columns clip_id, path) with one parameter combination.

    A clip that raises is recorded in ``failed`` and the others go on. With an empty unit table
    (a selection that names no unit) nothing is ablated: empty tables, and the log says why
    (:data:`NOTHING_SELECTED`).
    """
    if isinstance(settings.units, pd.DataFrame) and settings.units.empty:
        log.warning(NOTHING_SELECTED)
        return ShardResult({}, settings.units.astype({"layer": "int32", "neuron": "int32"}),
                           empty_table(SEGMENT_SCHEMA), empty_table(SUMMARY_SCHEMA), ClipFailures("ablation").table())
    units = settings.resolve_units(model)
    unit_table = units.table()
    curves: dict[str, np.ndarray] = {}
    segment_parts: list[pd.DataFrame] = []
    summary_parts: list[pd.DataFrame] = []
    batch = settings.perturbations_per_eval
    failures = ClipFailures("ablation")

    def one_clip(clip) -> int:
        prepared = prepare_clip(model, clip, dataset_root, settings.combination, settings.seed)
        wave, segments = prepared.waveform.numpy(), prepared.segments
        result = ablate_clip(model, prepared.waveform, segments, units, baseline=prepared.baseline,
                             reduction=settings.combination.reduction, perturbations_per_eval=batch)
        attr = result.attributions.numpy()
        levels = segment_levels_db(wave, segments)
        loud = levels >= settings.loudness_threshold_db
        summary = summarise(attr, result.original.numpy(), segments, loud)
        curves[clip.clip_id] = attr
        segment_parts.append(pd.DataFrame({
            "clip_id": clip.clip_id,
            "segment": np.arange(len(segments), dtype=np.int32),
            "start_s": segments.start_s.astype(np.float32),
            "end_s": segments.end_s.astype(np.float32),
            "level_db": levels.astype(np.float32),
            "loud": loud,
        }))
        summary_parts.append(pd.concat(
            [pd.DataFrame({"clip_id": [clip.clip_id] * len(unit_table)}), unit_table, summary], axis=1
        ))
        log.info("%s: %d units x %d segments", clip.clip_id, *attr.shape)
        return result.perturbations_per_eval

    bar = tqdm(clips.itertuples(index=False), total=len(clips), desc="ablate", unit="clip",
               disable=not progress)
    for clip in bar:
        # keep a batch that had to be reduced for the later clips
        batch = failures.attempt(clip.clip_id, clip.path, lambda: one_clip(clip)) or batch
    failures.check(len(clips))
    if not curves:
        return ShardResult({}, unit_table, empty_table(SEGMENT_SCHEMA), empty_table(SUMMARY_SCHEMA),
                           failures.table())
    return ShardResult(
        curves=curves,
        units=unit_table,
        segments=pd.concat(segment_parts, ignore_index=True),
        summary=pd.concat(summary_parts, ignore_index=True),
        failed=failures.table(),
    )
