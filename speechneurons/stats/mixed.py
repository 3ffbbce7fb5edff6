"""Mixed models for the top units, with the speaker's own slope for the tested factor.

``activation ~ factor + other within-speaker factors``, a random intercept per
speaker, and the speaker x factor interaction as a random effect: for a
two-level factor a random slope (``re_formula="~C(factor)"``, correlated with
the intercept); for more levels a speaker x level variance component (one
random deviation per speaker and level with a common variance: the
exchangeable-covariance random slope, which a 24-speaker study can estimate
where an 8 x 8 slope covariance cannot). When the slope's variance is
estimated at zero, statsmodels reports no convergence; that fit is kept
and the row says so: under planted speaker slopes its Wald p rejects 7.5 %
of null units at 0.05 (somewhat liberal with 24 speakers), the
random-intercept model 24 % (``bench/selectivity_null.py --scenario mixed``). Only when the slope model cannot be fitted at all does the p come from
the random-intercept model, which over-rejects under speaker slopes: the row
says that too.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from speechneurons.datasets.spec import SPEAKER

#: what ``mixed_model`` says about the fit a p-value comes from
SLOPE_MODEL = "speaker intercept + speaker x factor slope"
BOUNDARY_MODEL = SLOPE_MODEL + " (a variance at zero: not converged)"
INTERCEPT_MODEL = "speaker intercept only (the slope model failed)"
NO_MODEL = "not fitted"


def _fit(formula: str, data: pd.DataFrame, speaker: str, factor: str, slope: bool, levels: int):
    kwargs: dict = {}
    if slope and levels == 2:
        kwargs["re_formula"] = f"~C({factor})"
    elif slope:
        kwargs["re_formula"] = "1"  # with vc_formula, statsmodels drops the intercept otherwise
        kwargs["vc_formula"] = {"speaker_x_factor": f"0 + C({factor})"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(formula, data, groups=data[speaker], **kwargs).fit(reml=True)


def fit_mixed(values: np.ndarray, meta: pd.DataFrame, factor: str, covariates: Sequence[str],
              speaker: str = SPEAKER) -> dict:
    """Fit one unit's model and test ``factor`` (joint Wald test of its coefficients).

    covariates: the other within-speaker factors, fixed effects (those with
    one level in ``meta`` are left out). Returns p (NaN when nothing could be
    fitted), the speaker ICC (intercept variance over intercept plus residual
    variance), converged (statsmodels' flag), and ``model``: which fit the p
    comes from.
    """
    terms = [factor] + [c for c in covariates if c != factor and meta[c].nunique() > 1]
    data = meta[terms + [speaker]].copy()
    data["activation"] = np.asarray(values, dtype=np.float64)
    out = {"p": np.nan, "speaker_icc": np.nan, "converged": False, "model": NO_MODEL}
    levels = data[factor].nunique()
    if data[speaker].nunique() < 2 or levels < 2:
        return out
    formula = "activation ~ " + " + ".join(f"C({t})" for t in terms)
    fit = None
    for slope, name in ((True, SLOPE_MODEL), (False, INTERCEPT_MODEL)):
        try:
            candidate = _fit(formula, data, speaker, factor, slope, levels)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(candidate.fe_params).all() and np.isfinite(candidate.bse_fe).all():
            fit = candidate
            out["model"] = BOUNDARY_MODEL if slope and not candidate.converged else name
            out["converged"] = bool(candidate.converged)
            break
    if fit is None:
        return out
    names = list(fit.fe_params.index)
    rows = [i for i, name in enumerate(names) if name.startswith(f"C({factor})")]
    restriction = np.zeros((len(rows), len(fit.params)))
    restriction[np.arange(len(rows)), rows] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["p"] = float(fit.wald_test(restriction, scalar=True).pvalue)
    intercept_var = float(np.asarray(fit.cov_re)[0, 0])
    out["speaker_icc"] = intercept_var / (intercept_var + float(fit.scale))
    return out
