"""Benchmark: the speaker bootstrap from per-speaker parts (issue 22) against the code before it.

Before (``--before``, its ``speechneurons`` taken with ``git archive``): each resample gathers
its speakers' clips from the activation matrix and recomputes their cells and level contrasts.
Now: each speaker's level contrasts are computed once and a resample gathers them (one gather,
then a mean and SD per level). Both run :func:`speechneurons.reliability.bootstrap.speaker_bootstrap`
in their own process, threads pinned, on the same data: the full RAVDESS design (1,440 clips),
WavLM Base's 13 hidden and 12 feed-forward layers (46,848 units, as the cache holds them), the
top 4 units of every emotion in every layer, ``--resamples`` resamples. The layer tables must
agree (the largest difference of ``mean_jaccard`` is reported).

    python bench/bootstrap_speed.py --out bench/results/bootstrap-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from common import REPO, base_units, package_at, run_with, write_report

BEFORE = "80e5526"  # the last commit whose bootstrap gathered the clips of every resample

RUN = """
import json, sys, time
import numpy as np, pandas as pd
from threadpoolctl import threadpool_limits
from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC
from speechneurons.reliability.bootstrap import BootstrapSettings, speaker_bootstrap
import speechneurons
work, threads, resamples, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
meta = pd.read_parquet(f"{work}/meta.parquet")
units = pd.read_parquet(f"{work}/units.parquet")
matrix = ActivationMatrix(meta["clip_id"].tolist(), units, np.load(f"{work}/x.npy"))
selected = pd.read_parquet(f"{work}/selected.parquet")
with threadpool_limits(threads):
    start = time.perf_counter()
    _, layers, _ = speaker_bootstrap(matrix, meta, selected, SPEC,
                                     BootstrapSettings(resamples=resamples, top_k=4), progress=False)
    seconds = time.perf_counter() - start
layers.to_parquet(f"{work}/{name}.parquet")
print(json.dumps({"seconds": seconds, "module": speechneurons.__file__}))
"""


def full_size_data() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(clips, units, x [clips, units] float32 with actor intercepts, the top 4 of every emotion in
    every layer): the full RAVDESS design and WavLM Base's 13 hidden and 12 ffn layers."""
    sys.path.insert(0, str(REPO))
    from speechneurons.datasets.ravdess import SPEC, full_design

    meta = full_design()
    units = base_units()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(meta), len(units))).astype(np.float32)
    x += rng.normal(size=(25, len(units))).astype(np.float32)[meta["actor"].to_numpy()]
    selected = pd.DataFrame([{"site": s, "layer": int(layer), "neuron": n, "reason": "top_k", "emotion": lv,
                              "rank": 1, "score": 1.0}
                             for (s, layer), _ in units.groupby(["site", "layer"]) for lv in SPEC.levels("emotion")
                             for n in range(4)])
    return meta, units, x, selected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--resamples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    meta, units, x, selected = full_size_data()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        meta.to_parquet(work / "meta.parquet")
        units.to_parquet(work / "units.parquet")
        selected.to_parquet(work / "selected.parquet")
        np.save(work / "x.npy", x)
        del x
        old = package_at(args.before, work / "before")
        seconds = {way: run_with(package, RUN, str(work), str(args.threads), str(args.resamples), way,
                                 threads=args.threads, workdir=work)["seconds"]
                   for way, package in (("before", old), ("now", REPO))}
        tables = {way: pd.read_parquet(work / f"{way}.parquet") for way in seconds}
    keys = ["site", "layer", "emotion"]
    both = tables["before"].merge(tables["now"], on=keys, suffixes=("_before", "_now"))
    report = {
        "design": "RAVDESS (1,440 clips), 13 hidden x 768 + 12 ffn x 3,072 units, top 4 per emotion and layer",
        "resamples": args.resamples, "threads": args.threads, "before": args.before,
        "seconds_per_resample": {way: round(s / args.resamples, 3) for way, s in seconds.items()},
        "ratio": round(seconds["before"] / seconds["now"], 2),
        "layer_rows": len(both),
        "max_abs_mean_jaccard_difference": float((both["mean_jaccard_before"] - both["mean_jaccard_now"]).abs().max()),
        "resamples_equal": bool((both["resamples_before"] == both["resamples_now"]).all()),
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
