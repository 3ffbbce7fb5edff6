"""Benjamini-Hochberg q-values: every table that tests many rows carries one (Benjamini & Hochberg 1995)."""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN where p is NaN)."""
    p = np.asarray(p, dtype=float)
    q = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = false_discovery_control(p[ok], method="bh")
    return q
