"""Benchmark: selectivity statistics at full-size shapes on synthetic data.

1,440 clips in the RAVDESS speech design (24 actors x 60 clips: neutral at
normal intensity only, seven emotions at both; two statements, two
repetitions) and the units of WavLM Base Plus: 13 x 768 hidden + 12 x 3,072
feed-forward = 46,848. Activations are noise with actor effects, plus a few
planted emotion units. Times :func:`selectivity` with ``--permutations``
(1,000 by default) with BLAS threads pinned to one, and writes JSON. With
``--reference COMMIT`` it first runs the same benchmark on that commit's code
(a temporary git worktree, in a fresh process) and reports both and their
ratio, measured side by side on the same machine.

    python bench/selectivity_speed.py --reference efaa88c --out bench/results/selectivity-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons.cache import ActivationMatrix  # noqa: E402
from speechneurons.datasets.ravdess import SPEC, full_design  # noqa: E402
from speechneurons.stats.selectivity import StatsSettings, selectivity  # noqa: E402


#: runs a script with the package of its own tree, not the editable install's meta-path finder
LAUNCH = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
          "getattr(f, '__module__', '')]; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; "
          "runpy.run_path(sys.argv[0], run_name='__main__')")


def run_reference(commit: str, permutations: int) -> dict:
    """The benchmark of ``commit``'s tree, in a worktree and a fresh process (threads pinned)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=REPO, check=True,
                       capture_output=True)
        try:
            env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            done = subprocess.run([sys.executable, "-c", LAUNCH, str(tree), str(tree / "bench/selectivity_speed.py"),
                                   "--permutations", str(permutations)], env=env, check=True,
                                  capture_output=True, text=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    return json.loads(done.stdout[done.stdout.index("{"):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--reference", default=None, help="a commit to time side by side")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    reference = run_reference(args.reference, args.permutations) if args.reference else None
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        report = measure(args.permutations)
    if reference is not None:
        report = {"this": report, "reference": {"commit": args.reference, **reference},
                  "time_ratio": round(report["seconds"] / reference["seconds"], 2)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def measure(permutations: int) -> dict:
    """Selectivity of the full-size synthetic study: its time, peak memory and planted units found."""
    meta = full_design()
    sizes = [("hidden", k, 768) for k in range(13)] + [("ffn", k, 3072) for k in range(1, 13)]
    units = pd.concat([pd.DataFrame({"site": s, "layer": np.int32(k), "neuron": np.arange(n, dtype=np.int32)})
                       for s, k, n in sizes], ignore_index=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(meta), len(units))).astype(np.float32)
    x += rng.normal(size=(25, len(units))).astype(np.float32)[meta["actor"].to_numpy()]
    x[:, :10] += (meta["emotion"] == "angry").to_numpy()[:, None].astype(np.float32)
    matrix = ActivationMatrix(clip_ids=meta["clip_id"].tolist(), units=units, values=x)
    start = time.perf_counter()
    table, _, _ = selectivity(matrix, meta, SPEC, StatsSettings(permutations=permutations))
    seconds = time.perf_counter() - start
    emotion = table[table["factor"] == "emotion"]
    return {
        "clips": len(meta), "actors": 24, "units": len(units), "permutations": permutations,
        "factors": sorted(table["factor"].unique().tolist()),
        "seconds": round(seconds, 1),
        "peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "planted_emotion_units_found": int(emotion["selective"].iloc[:10].sum()),
        "noise_units_called_emotion_selective": int(emotion["selective"].iloc[10:].sum()),
    }


if __name__ == "__main__":
    main()
