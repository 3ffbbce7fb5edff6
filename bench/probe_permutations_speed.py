"""Benchmark: the probes' permutation null through each fold's hat matrix (issue 36) against the
refit per relabelling it replaced, side by side.

One 768-unit layer (WavLM Base's width) in RAVDESS's design (1,440 clips, 24 actors; actor
intercepts, 20 units +0.3 on angry), :func:`speechneurons.probes.layer_probes` with the default
folds and alphas, BLAS threads pinned to one, each run in its own process: the code of
``--before`` at 20 permutations (its default), this checkout's at 20 and at each of
``--permutations``. Reported: seconds and the emotion row's p.

    python bench/probe_permutations_speed.py --out bench/results/probe-permutations-cpu.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import REPO, package_at, run_with, write_report

BEFORE = "e7f207e"  # the last commit that refitted the probes per relabelling

RUN = """
import json, sys, time
import numpy as np, pandas as pd
import speechneurons
from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.probes import ProbeSettings, layer_probes
permutations = int(sys.argv[1])
meta = full_design().sort_values("clip_id").reset_index(drop=True)
rng = np.random.default_rng(0)
x = rng.normal(size=(len(meta), 768)) + rng.normal(size=(25, 768))[meta["actor"].to_numpy()]
x[:, :20] += 0.3 * (meta["emotion"] == "angry").to_numpy()[:, None]
units = pd.DataFrame({"site": "hidden", "layer": np.int32(1), "neuron": np.arange(768, dtype=np.int32)})
start = time.perf_counter()
table, _ = layer_probes(ActivationMatrix(meta["clip_id"].tolist(), units, x.astype(np.float32)), meta, SPEC,
                        ProbeSettings(permutations=permutations), progress=False)
print(json.dumps({"permutations": permutations, "seconds": round(time.perf_counter() - start, 1),
                  "emotion_p_perm": float(table.set_index("factor").loc["emotion", "p_perm"]),
                  "module": speechneurons.__file__}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--permutations", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    report = {"clips": 1440, "units": 768, "before": args.before}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = package_at(args.before, work / "before")
        report["before_at_20"] = run_with(old, RUN, "20", threads=1, workdir=work)
        report["now"] = [run_with(REPO, RUN, str(p), threads=1, workdir=work) for p in [20, *args.permutations]]
    for row in [report["before_at_20"], *report["now"]]:
        row.pop("module")
    report["ratio_now_at_most_over_before_at_20"] = round(report["now"][-1]["seconds"]
                                                          / report["before_at_20"]["seconds"], 2)
    write_report(report, args.out)


if __name__ == "__main__":
    main()
