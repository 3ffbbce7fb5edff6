"""The ablation stage: a shard of clips -> long attribution table + summaries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.ablation.engine import Units, ablate_clip
from speechneurons.ablation.segments import make_segments
from speechneurons.ablation.summary import SUMMARY_SCHEMA, summarise
from speechneurons.audio import load_waveform
from speechneurons.models import SpeechModel
from speechneurons.tables import empty_table

log = logging.getLogger(__name__)

#: Columns and dtypes of the long per-segment attribution table.
ATTRIBUTION_SCHEMA = {
    "clip_id": "str",
    "site": "str",
    "layer": "int32",
    "neuron": "int32",
    "segment": "int32",
    "start_s": "float32",
    "end_s": "float32",
    "attribution": "float32",
}


@dataclass(frozen=True)
class AblationSettings:
    """One combination of ablation parameters (a folder of results)."""

    units: Units
    baseline: str = "zero"
    segment_ms: int = 20
    reduction: str = "mean"
    perturbations_per_eval: int = 16


def ablate_clips(
    model: SpeechModel,
    clips: pd.DataFrame,
    dataset_root: str | Path,
    settings: AblationSettings,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ablate every clip of ``clips``: (per-segment attributions, per-(clip, unit) summary).

    The long table has one row per (clip, unit, segment) with columns
    ATTRIBUTION_SCHEMA; the summary one row per (clip, unit).
    """
    units = settings.units.resolve(model)
    unit_table = units.table()
    long_parts: list[pd.DataFrame] = []
    summary_parts: list[pd.DataFrame] = []
    for clip in tqdm(clips.itertuples(index=False), total=len(clips), desc="ablate",
                     unit="clip", disable=not progress):
        wave = torch.from_numpy(load_waveform(Path(dataset_root) / clip.path, model.sample_rate))
        segments = make_segments(len(wave), settings.segment_ms, model.sample_rate,
                                 model.hop_samples)
        result = ablate_clip(
            model, wave, segments, units,
            baseline=settings.baseline,
            reduction=settings.reduction,
            perturbations_per_eval=settings.perturbations_per_eval,
        )
        attr = result.attributions.numpy()
        n_units, n_seg = attr.shape
        long_parts.append(pd.DataFrame({
            "clip_id": clip.clip_id,
            "site": np.repeat(unit_table["site"].to_numpy(), n_seg),
            "layer": np.repeat(unit_table["layer"].to_numpy(), n_seg),
            "neuron": np.repeat(unit_table["neuron"].to_numpy(), n_seg),
            "segment": np.tile(np.arange(n_seg, dtype=np.int32), n_units),
            "start_s": np.tile(segments.start_s.astype(np.float32), n_units),
            "end_s": np.tile(segments.end_s.astype(np.float32), n_units),
            "attribution": attr.reshape(-1).astype(np.float32),
        }))
        summary = summarise(attr, result.original.numpy(), segments)
        summary_parts.append(pd.concat(
            [pd.DataFrame({"clip_id": [clip.clip_id] * n_units}), unit_table, summary], axis=1
        ))
        log.info("%s: %d units x %d segments", clip.clip_id, n_units, n_seg)
    if not long_parts:
        return empty_table(ATTRIBUTION_SCHEMA), empty_table(SUMMARY_SCHEMA)
    return pd.concat(long_parts, ignore_index=True), pd.concat(summary_parts, ignore_index=True)
