"""Calibration figures of the speaker-general tests on RAVDESS-shaped null data (no mean effect).

Three scenarios, each printed as JSON:

- ``issue``: issue 9's case. 24 actors x 60 clips, 2,000 units, actor SD 1,
  actor x emotion SD 0.3, clip noise SD 1. Share of units at p < 0.05 for the
  speaker-general test (p_speaker, p_perm), for the actor-blocked F of clips
  (p_within_speakers, the test ``selective`` used before), and how many units
  are called selective.
- ``sphericity``: 8,000 units with actor intercepts only (the cells of
  neutral hold half the clips): emotion's rejection rate uncorrected, with
  Greenhouse-Geisser and with Huynh-Feldt (Lecoutre) epsilon.
- ``mixed``: 80 units with actor x emotion slopes: the mixed model with the
  speaker slope against a random-intercept model.

    python bench/selectivity_null.py --scenario issue
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons.cache import ActivationMatrix  # noqa: E402
from speechneurons.datasets.ravdess import SPEC, full_design  # noqa: E402
from speechneurons.stats.mixed import fit_mixed  # noqa: E402
from speechneurons.stats.repeated import blocked_f  # noqa: E402
from speechneurons.stats.selectivity import StatsSettings, selectivity, speaker_rows  # noqa: E402


def null_data(units: int, seed: int, slope_sd: float) -> tuple[pd.DataFrame, np.ndarray]:
    meta = full_design()
    rng = np.random.default_rng(seed)
    cell = pd.factorize(meta["actor"].astype(str) + meta["emotion"])[0]
    x = (rng.normal(0, 1, (25, units))[meta["actor"].to_numpy()]
         + rng.normal(0, slope_sd, (cell.max() + 1, units))[cell] + rng.normal(size=(len(meta), units)))
    return meta, x


def issue(seed: int) -> dict:
    meta, x = null_data(2000, seed, 0.3)
    units = pd.DataFrame({"site": "hidden", "layer": np.int32(1), "neuron": np.arange(2000, dtype=np.int32)})
    settings = StatsSettings(permutations=1000, mixed_top_units=0, replication_top=10)
    table = selectivity(ActivationMatrix(meta["clip_id"].tolist(), units, x), meta, SPEC, settings)[0]
    emotion = table[table["factor"] == "emotion"]
    return {"units": 2000, "p_speaker_below_05": float((emotion["p_speaker"] < 0.05).mean()),
            "p_perm_below_05": float((emotion["p_perm"] < 0.05).mean()),
            "actor_blocked_F_below_05": float((emotion["p_within_speakers"] < 0.05).mean()),
            "selective": int(emotion["selective"].sum())}


def sphericity(seed: int) -> dict:
    meta, x = null_data(8000, seed, 0.0)
    rows, _ = speaker_rows(meta, "emotion")
    values = rows.values(x)
    plain, corrected = blocked_f(values, rows), blocked_f(values, rows, sphericity=True)
    # Greenhouse-Geisser, for comparison: every speaker has all 8 cells, rows in (speaker, level) order
    k = 8
    cells = values.reshape(24, k, -1)
    cov = np.einsum("sku,slu->klu", cells - cells.mean(0), cells - cells.mean(0)) / 23
    centred = cov - cov.mean(0) - cov.mean(1)[:, None] + cov.mean((0, 1))
    gg = np.einsum("kku->u", centred) ** 2 / ((k - 1) * (centred**2).sum((0, 1)))
    gg_p = stats.f.sf(plain.f, gg * plain.df_level, gg * plain.df_residual)
    rate = lambda p: float((p < 0.05).mean())  # noqa: E731
    return {"units": 8000, "uncorrected": rate(plain.p), "greenhouse_geisser": rate(gg_p),
            "huynh_feldt": rate(corrected.p), "standard_error": float(np.sqrt(0.05 * 0.95 / 8000))}


def mixed(seed: int) -> dict:
    import statsmodels.formula.api as smf

    meta, x = null_data(80, seed, 0.3)
    covariates = ["emotion", "intensity", "statement"]
    slope, intercept = [], []
    for unit in range(80):
        slope.append(fit_mixed(x[:, unit], meta, "emotion", covariates)["p"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smf.mixedlm("y ~ C(emotion) + C(intensity) + C(statement)", meta.assign(y=x[:, unit]),
                              groups=meta["actor"]).fit(reml=True)
            intercept.append(fit.wald_test(np.eye(len(fit.params))[1:8], scalar=True).pvalue)
    return {"units": 80, "slope_model_below_05": float((np.array(slope) < 0.05).mean()),
            "intercept_model_below_05": float((np.array(intercept) < 0.05).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["issue", "sphericity", "mixed"], default="issue")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    result = {"issue": issue, "sphericity": sphericity, "mixed": mixed}[args.scenario](args.seed)
    print(json.dumps({"scenario": args.scenario, "seed": args.seed, **result}, indent=2))


if __name__ == "__main__":
    main()
