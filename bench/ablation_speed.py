"""Benchmark: the ablation engine against the original guide's method and against the floor.

On one clip and one model it times, in one process:

(a) the original guide's method: Captum ``NeuronFeatureAblation``, one sweep per
    neuron, for ``--captum-neurons`` neurons of one hidden layer;
(b) the engine: every asked unit (default: all hidden layers) in one sweep;
(c) the floor: the forward passes any segment ablation needs (the original
    plus one per segment), plain ``model(x)`` at the engine's batch sizes.

It prints and writes JSON with seconds per clip, (a)/(b) per neuron and
(b)/(c), the process's peak memory after (b), and the largest difference
between (a) and the engine's rows for the same neurons. Timings on a shared
or 2-core machine are noisy: the ratios, taken in one run, are what to read.

    python bench/ablation_speed.py --model tiny --out bench/results/tiny.json
    python bench/ablation_speed.py --model full --out bench/results/full-cpu.json

``full`` is a randomly initialised ``WavLMConfig()`` (the Base Plus shape,
94.4 M parameters): the speed is that of the real model, no download needed.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from captum.attr import NeuronFeatureAblation

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons.ablation.engine import Units, ablate_clip  # noqa: E402
from speechneurons.ablation.segments import make_segments  # noqa: E402
from speechneurons.audio import load_waveform  # noqa: E402
from speechneurons.models import load_speech_model  # noqa: E402
from speechneurons.models.tiny import build_tiny_model  # noqa: E402

DEFAULT_CLIP = REPO / "data/ravdess-mini/Actor_01/03-01-03-01-01-01-01.wav"


def model_folder(kind: str, workdir: Path) -> str:
    """A folder that load_speech_model reads through from_pretrained."""
    if kind == "tiny":
        return str(build_tiny_model(workdir / "tiny", seed=0))
    if kind == "full":
        from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

        torch.manual_seed(0)
        WavLMModel(WavLMConfig()).save_pretrained(workdir / "full")
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(
            workdir / "full"
        )
        return str(workdir / "full")
    return kind  # a hub name or a folder


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, full, a hub name or a folder")
    parser.add_argument("--clip", default=str(DEFAULT_CLIP))
    parser.add_argument("--segment-ms", type=int, default=20)
    parser.add_argument("--perturbations-per-eval", type=int, default=16)
    parser.add_argument("--captum-neurons", type=int, default=2)
    parser.add_argument("--captum-layer", type=int, default=9, help="hidden layer (the original guide's layer_idx + 1)")
    parser.add_argument("--sites", default="hidden", help="comma-separated: hidden,ffn")
    parser.add_argument("--repeats", type=int, default=2, help="engine and floor runs; the fastest counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = load_speech_model(model_folder(args.model, Path(tmp)), device=args.device)
    wave = torch.from_numpy(load_waveform(args.clip))
    segments = make_segments(len(wave), args.segment_ms, model.sample_rate, model.hop_samples)
    units = Units(sites=tuple(args.sites.split(","))).resolve(model)
    layer = min(args.captum_layer, model.num_layers)
    batch = args.perturbations_per_eval
    x = wave.to(model.device)

    def floor() -> None:
        with torch.no_grad():
            model.model(model.normalize(x[None]))
            for start in range(0, len(segments), batch):
                n = min(batch, len(segments) - start)
                model.model(model.normalize(x.expand(n, -1).clone()))

    def engine():
        return ablate_clip(model, wave, segments, units, perturbations_per_eval=batch)

    floor_s, engine_s = math.inf, math.inf
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        floor_s = min(floor_s, timed(floor)[0])
        seconds, result = timed(engine)
        engine_s = min(engine_s, seconds)
    peak = peak_memory_gib(model.device)

    neurons = list(range(args.captum_neurons))
    module = model.model.encoder.layers[layer - 1]
    ablator = NeuronFeatureAblation(lambda w: model.model(model.normalize(w)), module)
    mask = segments.sample_to_segment(model.device)[None]
    table = units.table()
    captum_s, worst = 0.0, 0.0
    for neuron in neurons:
        seconds, attr = timed(lambda: ablator.attribute(
            x[None], neuron_selector=lambda out: out[0][..., neuron].mean(1), baselines=0.0,
            feature_mask=mask, perturbations_per_eval=batch))
        captum_s += seconds
        row = table.index[(table.site == "hidden") & (table.layer == layer) & (table.neuron == neuron)][0]
        worst = max(worst, float((result.attributions[row] - attr[0, segments.starts].cpu()).abs().max()))

    per_neuron_captum = captum_s / len(neurons)
    per_neuron_engine = engine_s / len(units)
    report = {
        "model": args.model,
        "parameters_m": round(sum(p.numel() for p in model.model.parameters()) / 1e6, 2),
        "device": str(model.device) if model.device.type == "cpu" else torch.cuda.get_device_name(),
        "threads": args.threads,
        "clip": Path(args.clip).name,
        "clip_seconds": round(len(wave) / model.sample_rate, 3),
        "segment_ms": args.segment_ms,
        "segments": len(segments),
        "perturbations_per_eval": batch,
        "engine_units": len(units),
        "captum_neurons": len(neurons),
        "seconds": {
            "captum_per_neuron": round(per_neuron_captum, 3),
            "engine_all_units": round(engine_s, 3),
            "floor": round(floor_s, 3),
        },
        "captum_over_engine_per_neuron": round(per_neuron_captum / per_neuron_engine, 1),
        "engine_over_floor": round(engine_s / floor_s, 4),
        "peak_memory_gib": round(peak, 3),
        "max_abs_difference_vs_captum": worst,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
