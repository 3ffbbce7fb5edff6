"""The time grid of attribution curves: how segments of any length fall into fixed bins.

A leaf module (numpy only): the temporal profiles (question 3) and the
agreement across segment lengths (reliability) put curves of 20 ms and
1,000 ms segments on one grid with it.
"""

from __future__ import annotations

import numpy as np


def overlap_weights(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """[segments, bins]: the fraction of each segment [start, end) that falls in each bin."""
    low = np.maximum(starts[:, None], edges[None, :-1])
    high = np.minimum(ends[:, None], edges[None, 1:])
    width = np.maximum(ends - starts, 1e-12)[:, None]
    return np.clip(high - low, 0.0, None) / width
