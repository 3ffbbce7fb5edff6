"""Benchmark: the knock-out's forward passes, batched above a shared prefix against one full pass per set.

A randomly initialised WavLM Base (``WavLMConfig()``, 94 M parameters) on one
bundled RAVDESS clip (3.5 s). Per knocked hidden layer, one speaker's sets:
8 emotion levels x (1 selected + ``--random-sets`` random) sets of
``--units`` units each, the default design's 32. Measured in the same run,
threads pinned (torch and BLAS):

- **before**: one full forward pass per set, from the waveform, batch 1 (the
  code before issue 22);
- **now**: :func:`speechneurons.knockout.forward.knocked_layer`, the clip
  run once up to the knocked layer, the layer's sets above it as one batch
  of ``--batch``.

The two must agree (the largest absolute difference is reported). Seconds per
clip for ``--layers``, interpolated linearly over the 13 hidden layers, times
1,440 clips give the CPU-hours of the full RAVDESS design both ways.

    python bench/knockout_speed.py --out bench/results/knockout-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from common import REPO, write_report

sys.path.insert(0, str(REPO))

from speechneurons.audio import load_waveform  # noqa: E402
from speechneurons.knockout.forward import knocked_layer  # noqa: E402
from speechneurons.models.families import FAMILIES  # noqa: E402
from speechneurons.models.speech_model import SpeechModel  # noqa: E402
from speechneurons.models.units import intervene  # noqa: E402

CLIP = REPO / "data/ravdess-mini/Actor_01/03-01-01-01-01-01-01.wav"
LEVELS, CLIPS, HIDDEN_LAYERS = 8, 1440, 13


def one_pass_per_set(model: SpeechModel, wave: torch.Tensor, layer: int, sets: list) -> np.ndarray:
    """Before: a full forward pass of the clip for each set."""
    wanted = [("hidden", k) for k in range(layer, model.num_layers + 1)]
    rows = []
    for s in sets:
        with torch.inference_mode(), intervene(model.family, model.model, "hidden", layer,
                                               [torch.tensor(s.neurons)], [torch.tensor(s.values)]):
            got = model.read(wave, wanted)
        rows.append(torch.cat([got[w][0].mean(dim=0) for w in wanted]).numpy())
    return np.vstack(rows)


def seconds(run, repeats: int) -> tuple[float, np.ndarray]:
    out = run()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = run()
    return (time.perf_counter() - start) / repeats, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="1,6,12", help="hidden layers timed (comma-separated)")
    parser.add_argument("--random-sets", type=int, default=3)
    parser.add_argument("--units", type=int, default=4, help="units per set (selection.top_k)")
    parser.add_argument("--batch", type=int, default=16, help="compute.perturbations_per_eval")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import WavLMConfig, WavLMModel

    torch.manual_seed(0)
    module = WavLMModel(WavLMConfig()).eval()
    model = SpeechModel(module, "random WavLM Base", None, True, 16_000, torch.device("cpu"), FAMILIES["wavlm"])
    wave = torch.from_numpy(load_waveform(CLIP))[None]
    rng = np.random.default_rng(0)
    sets = [SimpleNamespace(neurons=sorted(rng.choice(768, args.units, replace=False).tolist()),
                            values=rng.normal(size=args.units).tolist())
            for _ in range(LEVELS * (1 + args.random_sets))]
    layers = [int(k) for k in args.layers.split(",")]
    timed = {}
    with threadpool_limits(args.threads):
        for layer in layers:
            before, reference = seconds(lambda: one_pass_per_set(model, wave, layer, sets), args.repeats)
            now, batched = seconds(lambda: knocked_layer(model, wave, "hidden", layer, sets, args.batch), args.repeats)
            timed[layer] = {"before_s": round(before, 3), "now_s": round(now, 3), "ratio": round(before / now, 2),
                            "max_abs_difference": float(np.abs(batched - reference).max())}
            print(layer, timed[layer], flush=True)
    every = np.arange(HIDDEN_LAYERS)
    per_clip = {way: float(np.interp(every, layers, [timed[k][f"{way}_s"] for k in layers]).sum())
                for way in ("before", "now")}
    report = {
        "model": "random WavLM Base (WavLMConfig())", "clip_seconds": round(wave.shape[1] / 16_000, 2),
        "sets_per_layer": len(sets), "units_per_set": args.units, "batch": args.batch, "threads": args.threads,
        "layers": timed,
        "seconds_per_clip_13_layers": {k: round(v, 1) for k, v in per_clip.items()},
        "ratio_whole_design": round(per_clip["before"] / per_clip["now"], 2),
        "cpu_hours_1440_clips": {k: round(v * CLIPS / 3600, 1) for k, v in per_clip.items()},
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
