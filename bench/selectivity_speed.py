"""Benchmark: selectivity statistics at full-size shapes on synthetic data.

1,440 clips in the RAVDESS speech design (24 actors x 60 clips: neutral at
normal intensity only, seven emotions at both; two statements, two
repetitions) and the units of WavLM Base Plus: 13 x 768 hidden + 12 x 3,072
feed-forward = 46,848. Activations are noise with actor effects, plus a few
planted emotion units. Times :func:`selectivity` with ``--permutations``
(1,000 by default) and writes JSON.

    python bench/selectivity_speed.py --out bench/results/selectivity-cpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons.cache import ActivationMatrix  # noqa: E402
from speechneurons.datasets.ravdess import SPEC, full_design  # noqa: E402
from speechneurons.stats.selectivity import StatsSettings, selectivity  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
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
    table, _, _ = selectivity(matrix, meta, SPEC, StatsSettings(permutations=args.permutations))
    seconds = time.perf_counter() - start
    emotion = table[table["factor"] == "emotion"]
    report = {
        "clips": len(meta), "actors": 24, "units": len(units), "permutations": args.permutations,
        "factors": sorted(table["factor"].unique().tolist()),
        "seconds": round(seconds, 1),
        "peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "planted_emotion_units_found": int(emotion["selective"].iloc[:10].sum()),
        "noise_units_called_emotion_selective": int(emotion["selective"].iloc[10:].sum()),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
