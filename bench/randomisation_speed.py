"""Benchmark: the randomisation check started from the cached prefix, against every step from the waveform.

A randomly initialised WavLM Base (``WavLMConfig()``, 94 M parameters) saved and loaded through
``from_pretrained``, one real 3.47 s RAVDESS clip, ``--segment-ms`` segments (100: 35 of them),
8 units spread over the 25 site-layers, the default cascade (every layer, then every weight).
The same check runs twice in one process with torch and BLAS threads pinned: every step from the
waveform (``reuse_prefix=False``, the check before issue 22) and each step from the hidden state
entering its layer. Reported: seconds of each, their ratio, and whether the tables are equal.

    python bench/randomisation_speed.py --out bench/results/randomisation-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from common import REPO, write_report

CLIP = "Actor_01/03-01-01-01-01-01-01.wav"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segment-ms", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import torch
    from threadpoolctl import threadpool_limits
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    from speechneurons.ablation.engine import ResolvedUnits
    from speechneurons.combination import Combination
    from speechneurons.models import load_speech_model
    from speechneurons.reliability.randomisation import RandomisationSettings, randomisation_check

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        WavLMModel(WavLMConfig()).save_pretrained(Path(tmp) / "wavlm-base")
        Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(Path(tmp) / "wavlm-base")
        model = load_speech_model(str(Path(tmp) / "wavlm-base"))
        layers = [("hidden", k) for k in (0, 3, 6, 9, 12)] + [("ffn", k) for k in (2, 8, 12)]
        units = ResolvedUnits.from_table(pd.DataFrame([{"site": s, "layer": k, "neuron": 7} for s, k in layers]), model)
        clips = pd.DataFrame({"clip_id": ["03-01-01-01-01-01-01"], "path": [CLIP]})
        combo = Combination("zero", args.segment_ms, "mean")
        seconds, tables = {}, {}
        for way, reuse in (("from_the_waveform", False), ("from_the_cached_prefix", True)):
            start = time.perf_counter()
            tables[way] = randomisation_check(model, clips, REPO / "data/ravdess-mini", units, combo,
                                              RandomisationSettings(), progress=False, reuse_prefix=reuse)
            seconds[way] = round(time.perf_counter() - start, 1)
    equal = all(a.equals(b) for a, b in zip(tables["from_the_waveform"], tables["from_the_cached_prefix"]))
    write_report({"date": time.strftime("%Y-%m-%d"), "model": "WavLM Base shape, random, 94.4 M parameters",
                  "clip_seconds": 3.47, "segment_ms": args.segment_ms, "units": len(units), "threads": args.threads,
                  "steps": 1 + model.num_layers + 1, "seconds": seconds,
                  "ratio": round(seconds["from_the_waveform"] / seconds["from_the_cached_prefix"], 2),
                  "tables_equal": bool(equal)}, args.out)


if __name__ == "__main__":
    main()
