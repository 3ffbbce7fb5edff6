"""Benchmark: the selectivity stage at full-size shapes, from parquet shards to the table, in bounded memory.

Two cases, each a synthetic activation cache in the cache's layout (one row per clip and unit;
noise with speaker intercepts, a few planted emotion units) written to a temporary folder:

- ``base-ravdess``: RAVDESS's 1,440-clip speech design x WavLM Base's 46,848 units (hidden and
  ffn). Run twice side by side, each in a fresh process with BLAS threads pinned to one: the
  code of ``--before`` (the whole [clips, units] matrix in memory) and this checkout's (the cache
  read in blocks of units sized to ``--memory-gib``, as the rule runs it). Reported: seconds,
  peak memory (VmHWM), and whether the tables are equal (every column, exactly).
- ``large-cremad``: CREMA-D's 7,462-clip design x WavLM Large's 123,904 units, this checkout
  only (the whole matrix would need some 47 GiB): seconds, peak memory and blocks within
  ``--memory-gib``.

With ``base-ravdess`` also the cost of the sign-flip tail per strongly selective unit (a unit
beyond every flip runs to units / alpha flips), measured alone.

    python bench/selectivity_speed.py --case base-ravdess --out bench/results/selectivity-cpu.json
    python bench/selectivity_speed.py --case large-cremad --out bench/results/selectivity-large-cremad.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import REPO, base_units, package_at, run_with, write_report

BEFORE = "e7f207e"  # the last commit with Hotelling's T^2 and the half split (issue 36 replaced both)

RUN = """
import json, sys, time
import numpy as np, pandas as pd

def peak():  # this process's peak memory in GiB (VmHWM; ru_maxrss would keep the parent's)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20

import speechneurons
from speechneurons import cache
from speechneurons.datasets import corpus_spec
from speechneurons.stats.selectivity import StatsSettings, selectivity
work, corpus, way, permutations, memory_gib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
paths = sorted(str(p) for p in __import__("pathlib").Path(work).glob("shard*.parquet"))
meta = pd.read_parquet(f"{work}/meta.parquet")
settings = StatsSettings(permutations=permutations)
start = time.perf_counter()
if hasattr(cache, "ActivationCache"):
    from speechneurons.stats.selectivity import BYTES_PER_VALUE, reserved_gib
    spec = corpus_spec({"name": corpus})
    opened = cache.ActivationCache(paths, "mean")
    with opened.blocks(BYTES_PER_VALUE, memory_gib, reserved_gib(len(opened.units), len(spec.factor_names))) as source:
        blocks = len(source.bounds)
        table = selectivity(source, meta, corpus_spec({"name": corpus}), settings)[0]
else:
    blocks = 1
    table = selectivity(cache.activation_matrix(paths, "mean"), meta, corpus_spec({"name": corpus}), settings)[0]
seconds = time.perf_counter() - start
table.to_parquet(f"{work}/{way}.parquet")
emotion = table[table["factor"] == "emotion"]
print(json.dumps({"seconds": round(seconds, 1), "peak_gib": round(peak(), 2), "blocks": blocks,
                  "planted_emotion_units_found": int(emotion["selective"].iloc[:10].sum()),
                  "noise_units_called_emotion_selective": int(emotion["selective"].iloc[10:].sum()),
                  "module": speechneurons.__file__}))
"""


def large_units() -> pd.DataFrame:
    """WavLM Large's cached units: 25 hidden layers of 1,024 and 24 feed-forward layers of 4,096."""
    units = pd.concat([pd.DataFrame({"site": "hidden", "layer": np.repeat(np.arange(25), 1024),
                                     "neuron": np.tile(np.arange(1024), 25)}),
                       pd.DataFrame({"site": "ffn", "layer": np.repeat(np.arange(1, 25), 4096),
                                     "neuron": np.tile(np.arange(4096), 24)})], ignore_index=True)
    return units.astype({"layer": "int32", "neuron": "int32"})


def write_cache(folder: Path, meta: pd.DataFrame, units: pd.DataFrame, shards: int, target: str,
                planted_level: str) -> None:
    """Shards in the cache's layout, clips in clip_id order dealt into ``shards`` files: pooled
    means are noise plus a speaker intercept per unit; the first 10 units +1 at ``planted_level``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    speakers = pd.factorize(meta["speaker"])[0]
    intercept = rng.normal(size=(speakers.max() + 1, len(units))).astype(np.float32)
    site = pa.DictionaryArray.from_arrays(pa.array(pd.factorize(units["site"])[0].astype(np.int32)),
                                          pa.array(pd.factorize(units["site"])[1].tolist()))
    layer, neuron = pa.array(units["layer"].to_numpy()), pa.array(units["neuron"].to_numpy())
    meta.to_parquet(folder / "meta.parquet")
    for shard, rows in enumerate(np.array_split(np.arange(len(meta)), shards)):
        writer = None
        for start in range(0, len(rows), 8):
            chunk = rows[start:start + 8]
            values = rng.normal(size=(len(chunk), len(units))).astype(np.float32) + intercept[speakers[chunk]]
            values[:, :10] += (meta[target].to_numpy()[chunk] == planted_level)[:, None].astype(np.float32)
            n = len(chunk)
            table = pa.table({
                "clip_id": pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(n, dtype=np.int32), len(units))),
                                                          pa.array(meta["clip_id"].to_numpy()[chunk].tolist())),
                "site": pa.chunked_array([site] * n), "layer": pa.chunked_array([layer] * n),
                "neuron": pa.chunked_array([neuron] * n), "mean": pa.array(values.reshape(-1)),
                "std": pa.array(np.ones(n * len(units), dtype=np.float32)),
                "max": pa.array(np.ones(n * len(units), dtype=np.float32))})
            if writer is None:
                writer = pq.ParquetWriter(folder / f"shard{shard}.parquet", table.schema)
            writer.write_table(table)
        writer.close()


def compare(before: pd.DataFrame, now: pd.DataFrame) -> dict:
    """Whether two selectivity tables are equal, and the largest difference of a float column they
    share (a test that changed shows here: issue 36's p columns differ by design)."""
    shared = [c for c in now.columns if c in before.columns]
    before, now = before[shared], now[shared]
    equal = True
    try:
        pd.testing.assert_frame_equal(before, now, check_exact=True)
    except AssertionError:
        equal = False
    floats = [c for c in now.columns if now[c].dtype.kind == "f"]
    a, b = before[floats].to_numpy(), now[floats].to_numpy()
    scale = np.maximum(np.abs(a), 1e-12)
    with np.errstate(invalid="ignore"):
        relative = np.nanmax(np.abs(a - b) / scale)
    same = {c: bool(before[c].equals(now[c])) for c in now.columns if now[c].dtype.kind not in "f"}
    return {"equal_exactly": equal, "max_relative_difference_of_float_columns": float(relative),
            "columns_not_float_equal": [c for c, ok in same.items() if not ok]}


def tail_cost(units: int = 146, speakers: int = 24, contrasts: int = 7, alpha: float = 0.05,
              study_units: int = 46_848) -> dict:
    """Seconds per strongly selective unit of the sign-flip tail (one factor): ``units`` units beyond
    every flip (each speaker's contrast vector points one way), resolved to BH's first threshold
    over ``study_units`` units; BLAS threads pinned to one."""
    from threadpoolctl import threadpool_limits

    from speechneurons.stats.repeated import flip_pvalues, tail_flips_for

    rng = np.random.default_rng(0)
    z = rng.normal(size=(speakers, contrasts, units)) + 3.0
    observed = (z.sum(axis=0) ** 2).sum(axis=0)
    cap = tail_flips_for(study_units, alpha)
    with threadpool_limits(1):
        start = time.perf_counter()
        p = flip_pvalues(z, observed, 1000, 0, cap)
        seconds = time.perf_counter() - start
    return {"units": units, "speakers": speakers, "contrasts": contrasts, "flips": cap,
            "all_at_the_floor": bool(np.allclose(p, 1 / (cap + 1))), "seconds": round(seconds, 2),
            "seconds_per_unit": round(seconds / units, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=["base-ravdess", "large-cremad"], default="base-ravdess")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--memory-gib", type=float, default=4.0)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.case == "base-ravdess":
        from speechneurons.datasets.ravdess import full_design

        meta, units, corpus, level = full_design(), base_units(), "ravdess", "angry"
    else:
        from speechneurons.datasets.cremad import full_design

        meta, units, corpus, level = full_design(), large_units(), "cremad", "anger"
    meta = meta.sort_values("clip_id").reset_index(drop=True)
    report = {"case": args.case, "clips": len(meta), "speakers": int(meta["speaker"].nunique()),
              "units": len(units), "permutations": args.permutations, "memory_gib": args.memory_gib}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        write_cache(work, meta, units, 2, "emotion", level)
        report["cache_written_seconds"] = round(time.perf_counter() - start, 1)
        ways = [("now", REPO)]
        if args.case == "base-ravdess":
            ways.insert(0, ("before", package_at(args.before, work / "before")))
            report["before"] = args.before
        for way, package in ways:
            report[way] = run_with(package, RUN, str(work), corpus, way, str(args.permutations),
                                   str(args.memory_gib), threads=1, workdir=work)
            report[way].pop("module")
        if args.case == "base-ravdess":
            report["tables"] = compare(pd.read_parquet(work / "before.parquet"), pd.read_parquet(work / "now.parquet"))
            report["time_ratio_now_over_before"] = round(report["now"]["seconds"] / report["before"]["seconds"], 2)
            report["tail_per_strongly_selective_unit"] = tail_cost()
    write_report(report, args.out)


if __name__ == "__main__":
    main()
