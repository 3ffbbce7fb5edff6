"""The sample of clips and units a model check (deletion curves, randomisation) recomputes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from speechneurons.ablation.engine import ResolvedUnits
from speechneurons.ablation.run import requested_units
from speechneurons.models import SpeechModel
from speechneurons.reliability.common import sample_clips, sample_units
from speechneurons.integrity import read_parquet


def study_sample(model: SpeechModel, clips_path: str | Path, ablated_segments: list[str | Path],
                 ablation: Mapping[str, Any], selected: str | Path | None, n_clips: int, n_units: int,
                 seed: int) -> tuple[pd.DataFrame, ResolvedUnits]:
    """(sampled clips, sampled units) of a study for a model check.

    Clips are drawn among the index's clips (``clips_path``) that the first
    combination ablated (its segment index ``ablated_segments``); units among
    the study's ablated units, those the ``ablation`` section asks for
    (:func:`~speechneurons.ablation.run.requested_units`: the selection table
    ``selected``, or the config's sites, layers and neurons).
    """
    clips = read_parquet(clips_path)
    done = set(pd.concat([read_parquet(p, columns=["clip_id"]) for p in ablated_segments])["clip_id"])
    picked_clips = sample_clips(clips[clips["clip_id"].isin(done)], n_clips, seed)
    units = requested_units(ablation, selected)
    table = units if isinstance(units, pd.DataFrame) else units.resolve(model).table()
    picked = sample_units(table, n_units, seed)
    return picked_clips, ResolvedUnits.from_table(picked, model, "reliability units")
