"""Calibration of every test the workflow prints, under realistic nulls and a planted effect.

Runs the checks of :mod:`speechneurons.calibration` on RAVDESS-shaped data
(24 actors x 60 clips) and writes ``bench/results/calibration.json``: for
every p the rate at 0.05 and 0.001 with its SE, the share of complete-null
runs with any BH discovery, the coverage of intervals, the knock-out's
selected-vs-random difference under the null, and power for a planted
effect beside the tests this issue replaced (the code of commit
``REFERENCE``, read with ``git show``). BLAS threads are pinned to one.

    python bench/calibration.py            # the full table (about 20 minutes here)
    python bench/calibration.py --quick    # a smaller run, to try it
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons import calibration as cal  # noqa: E402
from speechneurons.datasets.ravdess import SPEC  # noqa: E402
from speechneurons.stats.fdr import bh  # noqa: E402
from speechneurons.stats.selectivity import speaker_rows  # noqa: E402

#: the last commit with the speaker-general tests of issue 9 (Huynh-Feldt F, relabelled cells)
REFERENCE = "efaa88c"


def reference_module() -> types.ModuleType:
    """``speechneurons/stats/repeated.py`` as it was at REFERENCE."""
    source = subprocess.run(["git", "show", f"{REFERENCE}:speechneurons/stats/repeated.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("repeated_at_reference")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, "repeated_at_reference.py", "exec"), module.__dict__)
    return module


def reference_tests(permutations: int):
    """(p of the replaced emotion test, selective of the replaced test) as functions of (meta, x)."""
    old = reference_module()

    def p_speaker(meta, x, factor="emotion"):
        rows, _ = speaker_rows(meta, SPEC, factor)
        return old.blocked_f(rows.values(x), rows, sphericity=True).p

    def selective(meta, x):
        rows, _ = speaker_rows(meta, SPEC, "emotion")
        values = rows.values(x)
        p = old.blocked_f(values, rows, sphericity=True).p
        p_perm = old.permutation_pvalues(values, rows, permutations, 0)
        return (bh(p) < 0.05) & (p_perm < 0.05)

    return p_speaker, selective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and units")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/calibration.json")
    args = parser.parse_args()
    size = (dict(units=500, runs=4, null_runs=10, perms=999, probe_layers=10, pipeline_runs=4)
            if args.quick else
            dict(units=4000, runs=3, null_runs=40, perms=999, probe_layers=40, pipeline_runs=20))
    p_reference, selective_reference = reference_tests(size["perms"])
    result: dict = {"reference_commit": REFERENCE, "sizes": size, "seconds": {}}

    def timed(name, function, *a, **k):
        start = time.perf_counter()
        value = function(*a, **k)
        result["seconds"][name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {result['seconds'][name]} s", file=sys.stderr, flush=True)
        return value

    with threadpool_limits(1):
        # rates in the tail: many units per run
        result["selectivity_tail"] = {kind: timed(f"selectivity_tail {kind}", cal.selectivity_null, kind,
                                                  size["units"], size["runs"], size["perms"],
                                                  reference=p_reference)
                                      for kind in cal.NULLS}
        # complete-null runs with any BH discovery: many runs of 1,000 units
        result["selectivity_discoveries"] = {
            kind: timed(f"selectivity_discoveries {kind}", cal.selectivity_null, kind, 1000,
                        size["null_runs"] // 2, size["perms"], seed=77)
            for kind in ("slopes_0.3", "heteroscedastic")}
        result["selectivity_power"] = timed("selectivity_power", cal.selectivity_power, 1000, 50, 0.5,
                                            size["runs"], size["perms"], reference=selective_reference)
        result["replication"] = timed("replication", cal.replication_null, "slopes_0.3", 1000,
                                      size["null_runs"] // 2, 199)
        result["selected_units"] = {kind: timed(f"selected_units {kind}", cal.selected_units_null, kind, 200,
                                                size["pipeline_runs"])
                                    for kind in ("slopes_0.3", "heteroscedastic")}
        result["knockout"] = timed("knockout", cal.knockout_null, "slopes_0.3", 16, size["pipeline_runs"])
        result["question_4"] = timed("question_4", cal.group_contrast_null, size["pipeline_runs"], 200)
        result["question_5"] = timed("question_5", cal.graded_null, "slopes_0.6", size["pipeline_runs"] // 2, 200)
        result["probes"] = {
            "slopes_0.6": timed("probes", cal.probe_null, "slopes_0.6", size["probe_layers"], 16, 19),
            "slopes_0.6_clip_shuffle_null": timed("probes (replaced null)", cal.probe_null, "slopes_0.6",
                                                  size["probe_layers"], 16, 19,
                                                  relabel=cal.clip_shuffle_relabel)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    logging.disable(logging.WARNING)  # the per-run notes (q_perm floors, speakers left out)
    main()
