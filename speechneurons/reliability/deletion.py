"""Deletion curves and additivity of segment attributions.

For one clip and unit with single-segment attributions a[s] (the ablation
engine's f(original) - f(segment s replaced)), segments are replaced
cumulatively: the top n_k by attribution (largest first), and in random
orders, for n_k = round(k / steps * segments), k = 0..steps. The drop
f(original) - f(first n_k replaced) traced over the deleted fraction is a
deletion curve (Samek et al. 2017; Petsiuk et al. 2018). If the attribution
ranks segments well, its curve rises faster than the random one: the area
between them (over the fraction deleted, divided by the attributed mass
sum |a|) is > 0. The additivity gap compares the joint drop with the sum of
the single attributions of the same segments: zero for a unit whose
response is additive over segments, and the larger the more segments
interact (the attributions then do not add up to what removing them does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.ablation.engine import ResolvedUnits, attribute_segments
from speechneurons.ablation.run import prepare_clip
from speechneurons.models import SpeechModel
from speechneurons.combination import Combination
from speechneurons.reliability.common import UNIT
from speechneurons.settings import FromConfig


@dataclass(frozen=True)
class DeletionSettings(FromConfig):
    """``reliability.deletion``: the sample and the curve's resolution."""

    SECTION: ClassVar[str] = "reliability.deletion"

    clips: int = 4
    units: int = 8
    steps: int = 10
    random_orders: int = 3
    seed: int = 0


@dataclass
class DeletionCurves:
    """One clip's curves: fractions [steps+1]; drops [units, steps+1]."""

    fractions: np.ndarray
    by_attribution: np.ndarray  # f(original) - f(top n_k by attribution replaced)
    at_random: np.ndarray  # the same, mean over random orders
    summed: np.ndarray  # sum of the single attributions of the top n_k
    attributed_mass: np.ndarray  # [units] sum |a|

    def summary(self) -> dict[str, np.ndarray]:
        """Per unit: area_between (normalised by the attributed mass), additivity_gap (mean |joint -
        summed| over the steps, normalised likewise) and the raw areas."""
        mass = np.where(self.attributed_mass > 0, self.attributed_mass, np.nan)
        area = np.trapezoid(self.by_attribution - self.at_random, self.fractions, axis=1)
        gap = np.abs(self.by_attribution - self.summed)[:, 1:].mean(axis=1)
        return {"area_between": area / mass, "additivity_gap": gap / mass, "area_between_raw": area,
                "attributed_mass": self.attributed_mass}


def _run(forward: Callable[[torch.Tensor], torch.Tensor], gates: torch.Tensor, batch: int) -> torch.Tensor:
    """Unit values [rows, units] of gate rows [rows, segments], ``batch`` rows per pass."""
    with torch.no_grad():
        return torch.cat([forward(gates[i:i + batch]) for i in range(0, len(gates), batch)]).double()


def deletion_curves(forward: Callable[[torch.Tensor], torch.Tensor], original: torch.Tensor,
                    attributions: torch.Tensor, steps: int, random_orders: int,
                    generator: torch.Generator, batch: int = 16) -> DeletionCurves:
    """Curves of every unit of a gated forward function (see ablation.engine.gated_forward).

    ``attributions`` [units, segments] and ``original`` [units] are that
    function's single-segment ablation result. Costs units x (steps - 1)
    rows for the attribution orders, random_orders x (steps - 1) for the
    random ones and one with every segment deleted, shared by all (with none
    deleted a unit's value is ``original``); a row that two units (or
    orders) share runs once.
    """
    units, segments = attributions.shape
    device = attributions.device
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * segments).astype(int)
    inner = torch.as_tensor(counts[1:-1], device=device)  # nothing and everything deleted: shared rows
    order = torch.argsort(attributions, dim=1, descending=True, stable=True)  # [units, segments]
    # unit u's k-th gate row deletes the segments whose rank in u's order is below counts[k]
    rank_of = torch.empty_like(order)
    rank_of.scatter_(1, order, torch.arange(segments, device=device).expand(units, -1).contiguous())
    attr_gates = (rank_of[:, None, :] >= inner[None, :, None]).float()  # [units, steps-1, segments]
    random_gates = []
    for _ in range(random_orders):
        perm = torch.randperm(segments, generator=generator).to(device)
        rank = torch.empty_like(perm)
        rank[perm] = torch.arange(segments, device=device)
        random_gates.append((rank[None, :] >= inner[:, None]).float())  # [steps-1, segments]
    # each unit's and each random order's inner steps, then all deleted (with nothing deleted the
    # values are ``original``); every distinct row runs once
    rows = torch.cat([attr_gates.reshape(-1, segments), *random_gates,
                      torch.zeros(1, segments, device=device)])
    distinct, which = torch.unique(rows, dim=0, return_inverse=True)  # units sharing their top segments
    values = _run(forward, distinct, batch)[which]  # [rows, units]
    nothing, everything = original.double()[None, :], values[-1:]
    inner_attr = values[:units * (steps - 1)].reshape(units, steps - 1, units)
    own = torch.cat([nothing.T, inner_attr[torch.arange(units), :, torch.arange(units)], everything.T], dim=1)
    by_attribution = original.double()[:, None] - own  # [units, steps+1]
    sorted_attr = attributions.double().gather(1, order)
    summed = torch.cat([torch.zeros(units, 1, dtype=torch.float64, device=device),
                        sorted_attr.cumsum(dim=1)], dim=1)[:, torch.as_tensor(counts, device=device)]
    random_drops = []
    for k in range(random_orders):
        start = units * (steps - 1) + k * (steps - 1)
        curve = torch.cat([nothing, values[start:start + steps - 1], everything])  # [steps+1, units]
        random_drops.append(original.double()[None, :] - curve)
    at_random = torch.stack(random_drops).mean(dim=0).T  # [units, steps+1]
    return DeletionCurves(fractions, by_attribution.cpu().numpy(), at_random.cpu().numpy(),
                          summed.cpu().numpy(), attributions.double().abs().sum(dim=1).cpu().numpy())


def deletion_check(model: SpeechModel, clips: pd.DataFrame, dataset_root: str | Path,
                   units: ResolvedUnits, combos: Sequence[Combination], settings: DeletionSettings,
                   ablation_seed: int = 0, batch: int = 16, progress: bool = True
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per (combination, unit, clip) summaries, long curves) for the sampled clips and units.

    ``clips`` (clip_id, path) and ``units`` are the samples; every combination
    recomputes its single-segment attributions (float32, not the stored
    float16) before the cumulative passes. No unit (an empty selection): empty tables.
    """
    if not len(units):
        return pd.DataFrame(), pd.DataFrame()
    unit_table = units.table()
    summaries, curves = [], []
    generator = torch.Generator().manual_seed(settings.seed)
    work = [(combo, clip) for combo in combos for clip in clips.itertuples(index=False)]
    for combo, clip in tqdm(work, desc="deletion curves", unit="clip", disable=not progress):
        prepared = prepare_clip(model, clip, dataset_root, combo, ablation_seed)
        forward = prepared.forward(model, units, combo.reduction)
        original, attributions, batch = attribute_segments(forward, len(prepared.segments), model.device, batch)
        result = deletion_curves(forward, original, attributions, settings.steps, settings.random_orders,
                                 generator, batch)
        summaries.append(pd.DataFrame({**combo.columns(), "combo": combo.label, **unit_table,
                                       "clip_id": clip.clip_id, "segments": len(prepared.segments),
                                       **result.summary()}))
        for order, drops in (("attribution", result.by_attribution), ("random", result.at_random),
                             ("sum of single", result.summed)):
            curves.append(pd.DataFrame({
                **combo.columns(), "combo": combo.label,
                **{c: np.repeat(unit_table[c].to_numpy(), len(result.fractions)) for c in UNIT},
                "clip_id": clip.clip_id, "order": order,
                "fraction": np.tile(result.fractions, len(unit_table)),
                "drop": drops.reshape(-1),
                "drop_norm": (drops / np.where(result.attributed_mass > 0, result.attributed_mass,
                                               np.nan)[:, None]).reshape(-1)}))
    return (pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(),
            pd.concat(curves, ignore_index=True) if curves else pd.DataFrame())
