"""What the reliability checks share: samples of clips and units, row-wise rank correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from speechneurons.schemas import UNIT

#: The cascade's last step: it re-initialises everything below transformer layer 1 too.
FEATURES = 0


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
