"""The sample of clips and units a model check (deletion curves, randomisation) recomputes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from speechneurons.ablation.engine import ResolvedUnits, Units
from speechneurons.ablation.run import selected_units
from speechneurons.models import SpeechModel
from speechneurons.reliability.common import sample_clips, sample_units


def study_sample(model: SpeechModel, clips_path: str | Path, ablated_segments: list[str | Path],
                 units_path: str | Path | None, units_config: dict, n_clips: int, n_units: int,
                 seed: int) -> tuple[pd.DataFrame, ResolvedUnits]:
    """(sampled clips, sampled units) of a study for a model check.

    Clips are drawn among the index's clips (``clips_path``) that the first
    combination ablated (its segment index ``ablated_segments``); units
    among the study's ablated units: the selection table ``units_path``, or
    when that is None the config's request (``units_config``: the sites,
    layers and neurons of the ``ablation`` section).
    """
    clips = pd.read_parquet(clips_path)
    done = set(pd.concat([pd.read_parquet(p, columns=["clip_id"]) for p in ablated_segments])["clip_id"])
    picked_clips = sample_clips(clips[clips["clip_id"].isin(done)], n_clips, seed)
    table = (selected_units(units_path) if units_path is not None
             else Units.from_config(**units_config).resolve(model).table())
    picked = sample_units(table, n_units, seed)
    return picked_clips, ResolvedUnits.from_table(picked, model, "reliability units")
