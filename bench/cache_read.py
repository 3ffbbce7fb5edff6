"""Benchmark: reading the activation cache into a [clips, units] matrix, before and after issue 22.

Before (``--before``, its ``speechneurons`` taken with ``git archive``): a pandas groupby per
clip. Now: pyarrow columns with dictionary-coded clip ids, reshaped. Both read the same shards
(``--clips`` clips of WavLM Base's 46,848 cached units, hidden and ffn, in ``--shards`` files),
each in its own process; reported: seconds, the process's peak memory, the bytes per value its
peak holds beyond the process after its imports and the matrix itself, and whether the
matrices are equal.

    python bench/cache_read.py --out bench/results/cache-read-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from common import REPO, base_units, package_at, run_with, write_report

BEFORE = "73e0cb6"  # the last commit whose reader grouped the clips in pandas

RUN = """
import json, sys, time
import numpy as np

def status(key):  # this process's memory in GiB (VmHWM: its peak; ru_maxrss would keep the parent's)
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) / 2**20

from speechneurons.cache import activation_matrix
import speechneurons
work, shards = sys.argv[1], int(sys.argv[2])
import pyarrow.parquet, pandas  # imported before the baseline is read
baseline = status("VmHWM")
start = time.perf_counter()
matrix = activation_matrix([f"{work}/shard{i}.parquet" for i in range(shards)], "mean")
seconds = time.perf_counter() - start
np.save(f"{work}/{sys.argv[3]}.npy", matrix.values)
print(json.dumps({"seconds": seconds, "peak_gib": status("VmHWM"),
                  "matrix_gib": matrix.values.nbytes / 2**30, "baseline_gib": baseline, "module": speechneurons.__file__}))
"""


def write_shards(folder: Path, clips: int, shards: int) -> None:
    """Shards in the cache's layout (one row per clip and unit: clip_id, site, layer, neuron, mean,
    std, max), WavLM Base's units."""
    units = base_units()
    rng = np.random.default_rng(0)
    for shard, ids in enumerate(np.array_split(np.arange(clips), shards)):
        n = len(ids) * len(units)
        pd.DataFrame({"clip_id": np.repeat([f"clip{i:05d}" for i in ids], len(units)),
                      "site": np.tile(units["site"].to_numpy(), len(ids)),
                      "layer": np.tile(units["layer"].to_numpy(), len(ids)),
                      "neuron": np.tile(units["neuron"].to_numpy(), len(ids)),
                      "mean": rng.normal(size=n).astype(np.float32), "std": rng.random(n).astype(np.float32),
                      "max": rng.normal(size=n).astype(np.float32)}).to_parquet(folder / f"shard{shard}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--clips", type=int, default=720)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_shards(work, args.clips, args.shards)
        old = package_at(args.before, work / "before")
        runs = {way: run_with(package, RUN, str(work), str(args.shards), way, threads=1, workdir=work)
                for way, package in (("before", old), ("now", REPO))}
        equal = bool(np.array_equal(np.load(work / "before.npy"), np.load(work / "now.npy")))
    values = args.clips * 46848
    report = {
        "clips": args.clips, "units": 46848, "shards": args.shards, "before": args.before,
        "seconds": {way: round(r["seconds"], 2) for way, r in runs.items()},
        "peak_gib": {way: round(r["peak_gib"], 3) for way, r in runs.items()},
        "bytes_per_value_above_the_matrix": {
            way: round((r["peak_gib"] - r["baseline_gib"] - r["matrix_gib"]) * 2**30 / values, 1)
            for way, r in runs.items()},
        "matrices_equal": equal,
    }
    write_report(report, args.out)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
