"""Mixed models for the top units: activation ~ emotion + intensity + statement + (1 | actor)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

FIXED = ("emotion", "intensity", "statement")


def fit_mixed(values: np.ndarray, meta: pd.DataFrame) -> dict[str, float]:
    """Fit one unit's model; p-values of each fixed factor (Wald, joint) and the actor ICC.

    Factors with fewer than two levels in ``meta`` are left out. Returns NaNs
    and converged=False when statsmodels cannot fit (tiny or degenerate data).
    """
    data = meta[list(FIXED) + ["actor"]].copy()
    data["activation"] = np.asarray(values, dtype=np.float64)
    terms = [f for f in FIXED if data[f].nunique() > 1]
    out = {f"p_{f}": np.nan for f in FIXED} | {"actor_icc": np.nan, "converged": False}
    if data["actor"].nunique() < 2:
        return out
    formula = "activation ~ " + (" + ".join(f"C({t})" for t in terms) if terms else "1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.mixedlm(formula, data, groups=data["actor"]).fit(reml=True)
    except (ValueError, np.linalg.LinAlgError):
        return out
    names = list(fit.params.index)
    for term in terms:
        rows = [i for i, name in enumerate(names) if name.startswith(f"C({term})")]
        restriction = np.zeros((len(rows), len(names)))
        restriction[np.arange(len(rows)), rows] = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[f"p_{term}"] = float(fit.wald_test(restriction, scalar=True).pvalue)
    actor_var = float(np.asarray(fit.cov_re)[0, 0])
    out["actor_icc"] = actor_var / (actor_var + float(fit.scale))
    out["converged"] = bool(fit.converged)
    return out
