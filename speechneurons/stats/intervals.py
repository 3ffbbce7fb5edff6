"""95 % intervals of a mean over independent replicates (speakers, folds).

:func:`t_interval` for an unbounded quantity; :func:`bounded_interval` for a
quantity that lives between two bounds (a share of attribution, a balanced
accuracy), whose t-interval reaches past them with few replicates (two
speakers: -1.6 to 1.9 for a share). It is the logit interval of a mean
proportion (Lumley 2010, ``svyciprop(method="logit")``; Korn & Graubard
1998): a Wald interval on the log-odds of the mean, standard error by the
delta method, t quantile on n - 1 degrees of freedom, mapped back. It lies
inside the bounds, holds the mean, and tends to the t-interval as n grows;
``tests/test_stats.py`` checks its coverage on skewed bounded values.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import expit, logit


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """t-interval of the mean of independent ``values`` [n] (NaN with fewer than two)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def bounded_interval(values: np.ndarray, low: float = 0.0, high: float = 1.0,
                     level: float = 0.95) -> tuple[float, float]:
    """Logit interval of the mean of independent ``values`` [n], each in [low, high].

    Returns (NaN, NaN) with fewer than two values, and (mean, mean) when they
    do not vary (all at one value, a bound included).
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return np.nan, np.nan
    if values.min() < low - 1e-9 or values.max() > high + 1e-9:
        raise ValueError(f"bounded_interval: values outside [{low}, {high}]: "
                         f"{values.min()} to {values.max()}")
    width = high - low
    mean = float(np.clip((values.mean() - low) / width, 0.0, 1.0))
    se = values.std(ddof=1) / np.sqrt(len(values)) / width
    if se == 0 or mean in (0.0, 1.0):
        return float(values.mean()), float(values.mean())
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * se / (mean * (1 - mean))
    centre = logit(mean)
    return float(low + width * expit(centre - half)), float(low + width * expit(centre + half))
