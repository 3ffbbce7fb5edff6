"""Benchmark: probes and knock-out at full size (1,440 clips, WavLM Base's 13 hidden layers).

Probes: synthetic pooled activations in the RAVDESS speech design (24
actors x 60 clips, 768 units per hidden layer, actor effects and one layer
carrying emotion); :func:`layer_probes` is timed on ``--layers`` layers with
the default settings (5 speaker-grouped folds, C chosen by a 3-fold inner
CV among 4 values, ``--permutations`` relabellings) and the per-layer time
is extrapolated to 13 layers. Knock-out: one forward pass of a randomly
initialised WavLM Base (94 M parameters, ``WavLMConfig()``) on a 3.5 s clip
with 4 units knocked out at layer 6 and layers 6-12 read, timed over
``--forwards`` passes; the study's count of passes (8 levels x (1 + 3
random sets) x 13 layers x 1,440 clips) is multiplied out, and the probes
of :func:`knockout_effects` are timed on one probe layer and extrapolated.

    python bench/probes_knockout_speed.py --out bench/results/probes-knockout-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from common import REPO, write_report

sys.path.insert(0, str(REPO))

from speechneurons.cache import ActivationMatrix  # noqa: E402
from speechneurons.datasets.ravdess import SPEC, full_design  # noqa: E402
from speechneurons.knockout.effects import knockout_effects  # noqa: E402
from speechneurons.knockout.sets import KnockoutSettings, knockout_sets  # noqa: E402
from speechneurons.probes import ProbeSettings, layer_probes  # noqa: E402

LAYERS, WIDTH, LEVELS, RANDOM_SETS = 13, 768, 8, 3


def synthetic(meta: pd.DataFrame, layers: int) -> ActivationMatrix:
    rng = np.random.default_rng(0)
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat(np.arange(layers), WIDTH).astype("int32"),
                          "neuron": np.tile(np.arange(WIDTH), layers).astype("int32")})
    x = rng.normal(size=(len(meta), len(units))).astype(np.float32)
    x += rng.normal(size=(25, len(units))).astype(np.float32)[meta["actor"].to_numpy()]
    emotion = pd.get_dummies(meta["emotion"]).to_numpy(np.float32)
    x[:, :LEVELS] += 0.8 * emotion  # layer 0 carries emotion in 8 units
    return ActivationMatrix(meta["clip_id"].tolist(), units, x)


def forward_seconds(passes: int, device: str) -> float:
    import torch
    from transformers import WavLMConfig, WavLMModel

    from speechneurons.models.families import FAMILIES
    from speechneurons.models.units import intervene, run_until_captured

    torch.manual_seed(0)
    model = WavLMModel(WavLMConfig()).eval().to(device)
    wave = torch.randn(1, 56_000, device=device)
    wanted = [("hidden", k) for k in range(6, 13)]
    family = FAMILIES["wavlm"]
    with torch.inference_mode():
        run_until_captured(family, model, wave, wanted)  # warm-up
        start = time.perf_counter()
        for _ in range(passes):
            with intervene(family, model, "hidden", 6, [torch.arange(4)], [torch.zeros(4, device=device)]):
                run_until_captured(family, model, wave, wanted)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=1, help="hidden layers probed (then extrapolated)")
    parser.add_argument("--permutations", type=int, default=20)
    parser.add_argument("--forwards", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    meta = full_design()
    report = {"clips": len(meta), "speakers": 24, "units_per_layer": WIDTH, "device": args.device}

    matrix = synthetic(meta, args.layers)
    start = time.perf_counter()
    table, _ = layer_probes(matrix, meta, SPEC, ProbeSettings(permutations=args.permutations), progress=False)
    per_layer = (time.perf_counter() - start) / args.layers
    emotion = table[table["factor"] == "emotion"].iloc[0]
    report["probes"] = {"layers_timed": args.layers, "permutations": args.permutations,
                        "seconds_per_layer": round(per_layer, 1),
                        "seconds_13_layers_extrapolated": round(per_layer * LAYERS, 0),
                        "planted_layer_emotion_accuracy": round(float(emotion["balanced_accuracy"]), 3),
                        "planted_layer_p_perm": float(emotion["p_perm"])}

    two = synthetic(meta, 2)
    selected = pd.DataFrame({"site": "hidden", "layer": np.int32(0), "neuron": np.arange(LEVELS, dtype="int32"),
                             "reason": "top_k", "emotion": SPEC.levels("emotion"), "rank": 1})
    sets = knockout_sets(selected, two, SPEC, KnockoutSettings(random_sets=RANDOM_SETS))
    knocked = {s: two.values for s in sets["set_id"]}  # timing only: the probe side's cost
    start = time.perf_counter()
    knockout_effects(two, knocked, sets[sets["layer"] == 0], meta, SPEC, ProbeSettings(permutations=0))
    per_probe_layer = (time.perf_counter() - start) / 2
    seconds = forward_seconds(args.forwards, args.device)
    passes = LEVELS * (1 + RANDOM_SETS) * LAYERS * len(meta)
    report["knockout"] = {
        "forward_seconds_3.5s_clip": round(seconds, 4), "passes_full_study": passes,
        "forward_hours_full_study": round(passes * seconds / 3600, 2),
        "forward_hours_one_layer": round(passes / LAYERS * seconds / 3600, 2),
        "probe_side_seconds_per_probe_layer": round(per_probe_layer, 1),
        "probe_side_minutes_13_layers_extrapolated": round(per_probe_layer * LAYERS / 60, 1),
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
