"""What the reliability checks share: combinations, samples of clips and units, row-wise rank correlation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from speechneurons.ablation.engine import ResolvedUnits, Units
from speechneurons.ablation.run import selected_units
from speechneurons.models import SpeechModel

UNIT = ["site", "layer", "neuron"]


@dataclass(frozen=True)
class Combination:
    """One ablation parameter combination (one results folder)."""

    baseline: str
    segment_ms: int
    reduction: str

    @property
    def label(self) -> str:
        return f"{self.baseline}, {self.segment_ms} ms, {self.reduction}"

    @classmethod
    def from_config(cls, values: dict) -> "Combination":
        """From {baseline, segment_ms, reduction} (a rule's params)."""
        return cls(str(values["baseline"]), int(values["segment_ms"]), str(values["reduction"]))

    def columns(self) -> dict:
        return {"baseline": self.baseline, "segment_ms": self.segment_ms, "reduction": self.reduction}


def sample_clips(clips: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` clips drawn with ``seed`` (all when fewer), in clip_id order."""
    if len(clips) <= n:
        return clips.sort_values("clip_id").reset_index(drop=True)
    return clips.sample(n=n, random_state=seed).sort_values("clip_id").reset_index(drop=True)


def sample_units(units: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` units spread over (site, layer): shuffled within each, then taken in turn.

    ``units`` has site, layer, neuron; the result is sorted like the engine's output.
    """
    units = units[UNIT].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(group.index.to_numpy()))
              for _, group in units.groupby(["site", "layer"], sort=True)]
    picked: list[int] = []
    while len(picked) < min(n, len(units)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(int(queue.pop(0)))
    return units.loc[picked].sort_values(UNIT).reset_index(drop=True)


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of a and b ([rows, n]); NaN where a row is constant."""
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


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
