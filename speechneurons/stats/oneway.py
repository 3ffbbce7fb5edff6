"""One-way statistics for thousands of units at once: X is [clips, units], labels [clips].

Each function equals its scipy/statsmodels counterpart unit by unit (tested)
but runs on the whole matrix: a full-size WavLM has 46,848 units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from speechneurons.stats.products import times_columns


def one_hot(codes: np.ndarray, levels: int) -> np.ndarray:
    """[clips] integer codes -> [clips, levels] float indicator matrix."""
    out = np.zeros((len(codes), levels))
    out[np.arange(len(codes)), codes] = 1.0
    return out


@dataclass
class OneWay:
    """Per-unit one-way ANOVA quantities (arrays of [units])."""

    ss_between: np.ndarray
    ss_total: np.ndarray
    df_between: int
    df_within: int
    level_means: np.ndarray  # [levels, units]
    level_counts: np.ndarray  # [levels]

    @property
    def ss_within(self) -> np.ndarray:
        return self.ss_total - self.ss_between

    @property
    def f(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.ss_between / self.df_between) / (self.ss_within / self.df_within)

    @property
    def p_f(self) -> np.ndarray:
        return stats.f.sf(self.f, self.df_between, self.df_within)

    @property
    def eta2(self) -> np.ndarray:
        """Share of variance between levels: SS_between / SS_total."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.ss_between / self.ss_total

    @property
    def omega2(self) -> np.ndarray:
        """Less biased than eta2: (SS_b - df_b MS_w) / (SS_t + MS_w)."""
        ms_within = self.ss_within / self.df_within
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.ss_between - self.df_between * ms_within) / (self.ss_total + ms_within)


def oneway(x: np.ndarray, codes: np.ndarray, levels: int) -> OneWay:
    """One-way ANOVA of every column of x [clips, units] on integer codes [clips]."""
    x = np.asarray(x, dtype=np.float64)
    g = one_hot(codes, levels)
    counts = g.sum(axis=0)
    sums = times_columns(g.T, x)  # [levels, units]
    total = x.sum(axis=0)
    n = len(x)
    present = counts > 0
    ss_between = (sums[present] ** 2 / counts[present, None]).sum(axis=0) - total**2 / n
    ss_total = (x**2).sum(axis=0) - total**2 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums / counts[:, None]
    k = int(present.sum())
    return OneWay(np.maximum(ss_between, 0), np.maximum(ss_total, 0), k - 1, n - k, means, counts)


def kruskal(x: np.ndarray, codes: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Kruskal-Wallis H (tie-corrected, as scipy) and its chi-square p for every column."""
    ranks = stats.rankdata(x, axis=0)
    n = len(x)
    g = one_hot(codes, levels)
    counts = g.sum(axis=0)
    present = counts > 0
    rank_sums = times_columns(g.T, ranks)[present]
    h = 12.0 / (n * (n + 1)) * (rank_sums**2 / counts[present, None]).sum(axis=0) - 3 * (n + 1)
    # tie correction: 1 - sum(t^3 - t) / (n^3 - n), per column
    sorted_x = np.sort(x, axis=0)
    ties = np.zeros(x.shape[1])
    for column in range(x.shape[1]):
        _, t = np.unique(sorted_x[:, column], return_counts=True)
        ties[column] = (t**3 - t).sum()
    correction = 1 - ties / (n**3 - n)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = h / correction
    return h, stats.chi2.sf(h, int(present.sum()) - 1)


def cohens_d(x: np.ndarray, in_group: np.ndarray) -> np.ndarray:
    """(mean of in_group - mean of the rest) / pooled SD, for every column."""
    x = np.asarray(x, dtype=np.float64)
    a, b = x[in_group], x[~in_group]
    na, nb = len(a), len(b)
    pooled = ((na - 1) * a.var(axis=0, ddof=1) + (nb - 1) * b.var(axis=0, ddof=1)) / (na + nb - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(pooled)
