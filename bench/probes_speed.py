"""Benchmark: the ridge probes (issue 22) against the logistic probes they replace, side by side.

The logistic probes are today's code at ``--before`` (a commit; its ``speechneurons`` package is
taken with ``git archive``), the ridge probes this checkout's; each runs
:func:`speechneurons.probes.layer_probes` in its own process, threads pinned, on the same
synthetic pooled activations in the RAVDESS design (24 actors x 60 clips; actor intercepts and
actor x emotion slopes in every unit; planted effects below), with its own default settings
(5 speaker-grouped folds, a 3-fold inner choice among 4 strengths, ``--permutations``
relabellings):

- **speed**: one 768-unit layer (WavLM Base's width) with emotion planted, seconds both ways
  (the fastest of ``--repeats`` runs);
- **agreement**: ``--layers`` layers of ``--width`` units, emotion planted at strengths from 0 to
  strong and sex in one layer: per (layer, factor) the balanced accuracy and the permutation p
  both ways, the largest difference, and whether the same rows are significant at .05.

    python bench/probes_speed.py --out bench/results/probes-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from common import REPO, package_at, run_with, write_report

BEFORE = "80e5526"  # the last commit with the logistic probes
#: per agreement layer: (emotion strength, sex strength) in SD units of the noise
PLANTED = [(0.0, 0.0), (0.15, 0.0), (0.3, 0.0), (0.6, 0.0), (0.0, 0.8), (1.2, 0.0)]

RUN = """
import json, sys, time
import numpy as np, pandas as pd
from threadpoolctl import threadpool_limits
from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC
from speechneurons.probes import ProbeSettings, layer_probes
work, threads, permutations, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
meta = pd.read_parquet(f"{work}/meta.parquet")
out = {}
for name in ("speed", "agreement"):
    data = np.load(f"{work}/{name}.npz")
    units = pd.DataFrame({"site": "hidden", "layer": data["layers"], "neuron": data["neurons"]})
    matrix = ActivationMatrix(meta["clip_id"].tolist(), units, data["x"])
    out[name] = float("inf")
    for _ in range(repeats if name == "speed" else 1):  # the fastest run counts
        with threadpool_limits(threads):
            start = time.perf_counter()
            table, _ = layer_probes(matrix, meta, SPEC, ProbeSettings(permutations=permutations), progress=False)
            out[name] = min(out[name], time.perf_counter() - start)
    table.to_parquet(f"{work}/{sys.argv[4]}-{name}.parquet")
import speechneurons.probes
out["module"] = speechneurons.probes.__file__
print(json.dumps(out))
"""


def planted(meta: pd.DataFrame, layers: list[tuple[float, float]], width: int, seed: int) -> dict:
    """x [clips, layers * width] float32: per unit actor intercepts (SD 1), actor x emotion slopes
    (SD 0.3), noise (SD 1), and in the first 8 units of a layer emotion (one unit per level) and
    sex at the layer's strengths."""
    rng = np.random.default_rng(seed)
    actor = meta["actor"].to_numpy()
    emotion = pd.get_dummies(meta["emotion"]).to_numpy(float)
    female = (meta["gender"] == "female").to_numpy(float)[:, None]
    blocks = []
    for emotion_strength, sex_strength in layers:
        slopes = rng.normal(0, 0.3, size=(25, emotion.shape[1], width))[actor]
        x = (rng.normal(size=(25, width))[actor] + np.einsum("ce,cew->cw", emotion, slopes)
             + rng.normal(size=(len(meta), width)))
        x[:, :emotion.shape[1]] += emotion_strength * emotion
        x[:, emotion.shape[1]:2 * emotion.shape[1]] += sex_strength * female
        blocks.append(x)
    return {"x": np.hstack(blocks).astype(np.float32),
            "layers": np.repeat(np.arange(len(layers)), width).astype(np.int32),
            "neurons": np.tile(np.arange(width), len(layers)).astype(np.int32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE, help="commit with the logistic probes")
    parser.add_argument("--width", type=int, default=64, help="units per agreement layer")
    parser.add_argument("--permutations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the speed layer each way (the fastest counts)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from speechneurons.datasets.ravdess import full_design

    meta = full_design()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        meta.to_parquet(work / "meta.parquet")
        np.savez(work / "speed.npz", **planted(meta, [(0.3, 0.0)], 768, seed=1))
        np.savez(work / "agreement.npz", **planted(meta, PLANTED, args.width, seed=2))
        old = package_at(args.before, work / "before")
        seconds = {way: run_with(package, RUN, str(work), str(args.threads), str(args.permutations), way,
                                 str(args.repeats), threads=args.threads, workdir=work)
                   for way, package in (("logistic", old), ("ridge", REPO))}
        tables = {way: pd.read_parquet(work / f"{way}-agreement.parquet") for way in seconds}
    keys = ["layer", "factor"]
    both = tables["logistic"].merge(tables["ridge"], on=keys, suffixes=("_logistic", "_ridge"))
    both = both[~both["factor"].str.startswith("speaker identity")]
    rows = both[keys + ["balanced_accuracy_logistic", "balanced_accuracy_ridge", "p_perm_logistic",
                        "p_perm_ridge"]].round(4)
    significant = {way: both[f"p_perm_{way}"] <= 0.05 for way in ("logistic", "ridge")}
    emotion = both[both["factor"] == "emotion"]
    report = {
        "design": "RAVDESS speech (24 actors x 60 clips), actor intercepts and actor x emotion slopes",
        "permutations": args.permutations, "threads": args.threads, "repeats": args.repeats, "before": args.before,
        "seconds_one_768_unit_layer": {way: round(s["speed"], 2) for way, s in seconds.items()},
        "ratio_per_layer": round(seconds["logistic"]["speed"] / seconds["ridge"]["speed"], 2),
        "agreement": {
            "layers": len(PLANTED), "width": args.width, "planted_emotion_sex": PLANTED,
            "seconds": {way: round(s["agreement"], 2) for way, s in seconds.items()},
            "max_abs_balanced_accuracy_difference": float(
                (both["balanced_accuracy_logistic"] - both["balanced_accuracy_ridge"]).abs().max()),
            "rows": len(both),
            "same_rows_significant_at_05": bool((significant["logistic"] == significant["ridge"]).all()),
            "rows_significant_at_05": {way: int(v.sum()) for way, v in significant.items()},
            "best_emotion_layer": {way: int(emotion.loc[emotion[f"balanced_accuracy_{way}"].idxmax(), "layer"])
                                   for way in ("logistic", "ridge")},
            "table": rows.to_dict(orient="records"),
        },
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
