"""Agreement of attribution curves across ablation settings.

For every (unit, clip) attributed under two combinations that differ in one
setting (baseline, segment length or reduction), both curves are brought to
the coarser segment grid (each finer segment's attribution is spread over the
coarse segments it overlaps, in proportion to the overlap) and compared by
Spearman's rank correlation and by whether their peak (largest attribution)
segment is the same one. Summaries are per unit and per (site, layer).
"""

from __future__ import annotations

from dataclasses import fields
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from safetensors import safe_open

from speechneurons.unit_arrays import read_units
from speechneurons.time_grid import overlap_weights
from speechneurons.combination import Combination
from speechneurons.reliability.common import UNIT, row_spearman
from speechneurons.integrity import read_parquet

SETTINGS = tuple(f.name for f in fields(Combination))  # baseline, segment_ms, reduction
#: a (site, layer) whose curves correlate less than this across baselines is named in the report
DEPENDS_BELOW = 0.5


class CurveSource:
    """The attribution curves of one combination, read clip by clip from its shards."""

    def __init__(self, tensor_paths: Sequence[str | Path], segment_paths: Sequence[str | Path]):
        self._where: dict[str, str] = {}
        self._segments: dict[str, pd.DataFrame] = {}
        self.units: pd.DataFrame | None = None
        for tensor_path, segment_path in zip(tensor_paths, segment_paths, strict=True):
            units = read_units(tensor_path)
            if self.units is None or self.units.empty:
                self.units = units
            elif len(units) and not units.equals(self.units):
                raise ValueError(f"{tensor_path}: its units differ from the other shards of the combination")
            with safe_open(str(tensor_path), framework="numpy") as f:
                self._where.update({clip: str(tensor_path) for clip in f.keys()})
            segments = read_parquet(segment_path)
            self._segments.update({c: s.sort_values("segment") for c, s in segments.groupby("clip_id")})

    @property
    def clip_ids(self) -> set[str]:
        return set(self._where)

    def curve(self, clip_id: str) -> tuple[np.ndarray, pd.DataFrame]:
        """([units, segments] float64, that clip's segments)."""
        with safe_open(self._where[clip_id], framework="numpy") as f:
            values = f.get_tensor(clip_id).astype(np.float64)
        return values, self._segments[clip_id]


def onto_grid(curve: np.ndarray, segments: pd.DataFrame, grid: pd.DataFrame) -> np.ndarray:
    """[units, segments] on ``segments`` -> [units, grid segments]: each segment's value spread over
    the grid segments it overlaps, in proportion to the overlap (sums are kept)."""
    edges = np.r_[grid["start_s"].to_numpy(float), float(grid["end_s"].iloc[-1])]
    weights = overlap_weights(segments["start_s"].to_numpy(float), segments["end_s"].to_numpy(float), edges)
    return curve @ weights


def compare_curves(a: np.ndarray, seg_a: pd.DataFrame, b: np.ndarray, seg_b: pd.DataFrame
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """(rho [units], peak agrees [units] as float, segments compared) of two curves of one clip.

    The finer curve goes onto the coarser grid. A unit whose curve is constant
    on either side has rho and peak NaN (there is nothing to rank).
    """
    if len(seg_a) > len(seg_b):
        a = onto_grid(a, seg_a, seg_b)
    elif len(seg_b) > len(seg_a):
        b = onto_grid(b, seg_b, seg_a)
    rho = row_spearman(a, b)
    flat = (np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0)
    peak = (a.argmax(axis=1) == b.argmax(axis=1)).astype(float)
    peak[flat] = np.nan
    return rho, peak, a.shape[1]


def setting_pairs(combos: Sequence[Combination]) -> list[tuple[int, int, str]]:
    """(i, j, setting) for every two combinations that differ in exactly one setting."""
    out = []
    for i, j in combinations(range(len(combos)), 2):
        differ = [s for s in SETTINGS if getattr(combos[i], s) != getattr(combos[j], s)]
        if len(differ) == 1:
            out.append((i, j, differ[0]))
    return out


def agreement(sources: dict[Combination, CurveSource]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(per unit and pair of settings, per (site, layer) and pair, notes).

    Unit rows: median_rho over clips, peak_agreement (share of clips whose
    peak segment agrees), n_clips. Layer rows: median and quartiles of rho
    over every (unit, clip), peak_agreement, chance_peak (the mean of
    1 / segments compared: agreement by chance) and n_pairs.
    """
    combos = list(sources)
    pairs = setting_pairs(combos)
    notes = []
    if not pairs:
        notes.append(f"agreement: {len(combos)} ablation combination(s), none differing in one setting "
                     "from another; give two baselines, segment lengths or reductions to compare")
    rows = []
    for i, j, setting in pairs:
        a, b = sources[combos[i]], sources[combos[j]]
        units = a.units.reset_index().merge(b.units.reset_index(), on=UNIT, suffixes=("_a", "_b"))
        for clip_id in sorted(a.clip_ids & b.clip_ids):
            curve_a, seg_a = a.curve(clip_id)
            curve_b, seg_b = b.curve(clip_id)
            rho, peak, n = compare_curves(curve_a[units["index_a"]], seg_a, curve_b[units["index_b"]], seg_b)
            rows.append(pd.DataFrame({
                "setting": setting, "a": str(getattr(combos[i], setting)),
                "b": str(getattr(combos[j], setting)), "combo_a": combos[i].label,
                "combo_b": combos[j].label, **{c: units[c].to_numpy() for c in UNIT},
                "clip_id": clip_id, "rho": rho, "peak_agrees": peak, "chance_peak": 1.0 / n}))
    pair_keys = ["setting", "a", "b", "combo_a", "combo_b"]
    if not rows:
        unit_cols = [*pair_keys, *UNIT, "median_rho", "peak_agreement", "n_clips"]
        layer_cols = [*pair_keys, "site", "layer", "median_rho", "rho_q25", "rho_q75", "peak_agreement",
                      "chance_peak", "n_pairs"]
        return pd.DataFrame(columns=unit_cols), pd.DataFrame(columns=layer_cols), notes
    long = pd.concat(rows, ignore_index=True)
    per_unit = long.groupby([*pair_keys, *UNIT], sort=True).agg(
        median_rho=("rho", "median"), peak_agreement=("peak_agrees", "mean"),
        n_clips=("clip_id", "size")).reset_index()
    per_layer = long.groupby([*pair_keys, "site", "layer"], sort=True).agg(
        median_rho=("rho", "median"), rho_q25=("rho", lambda r: r.quantile(0.25)),
        rho_q75=("rho", lambda r: r.quantile(0.75)), peak_agreement=("peak_agrees", "mean"),
        chance_peak=("chance_peak", "mean"), n_pairs=("rho", "size")).reset_index()
    return per_unit, per_layer, notes


def baseline_dependent(per_layer: pd.DataFrame, below: float = DEPENDS_BELOW) -> pd.DataFrame:
    """The (site, layer) rows of baseline pairs whose median rho is below ``below``."""
    rows = per_layer[(per_layer["setting"] == "baseline") & (per_layer["median_rho"] < below)]
    return rows.sort_values(["site", "layer"]).reset_index(drop=True)
