"""The GPU check: what a machine with a GPU does with this code, in one run that writes one JSON.

``bench/gpu_check.sh`` runs it (under 8 minutes on one H200 at full size). Sections, each
written to the JSON as soon as it is done, so a run stopped part-way keeps what it measured:

``environment``
    device, memory, torch / transformers / captum versions, TF32 settings.
``model_checks``
    for every family and layer-norm layout, a tiny seeded model on the device: hidden layer k
    equals HF's ``hidden_states[k]``; the engine equals Captum ``FeatureAblation`` on HF's own
    hidden states; the knock-out's batched sets equal one pass per set.
``engine_device_vs_cpu``
    the full-size engine (every hidden unit, 20 ms segments) on a bundled RAVDESS clip, on the
    device and on the CPU: the largest difference, with cuDNN's TF32 convolutions on (torch's
    default) and off.
``engine_speed``
    engine and forward-pass floor at ``perturbations_per_eval`` 16, 64 and every segment at
    once (halved on out of memory, as the workflow does): engine/floor and the real-time
    factor (engine seconds per second of audio).
``knockout``
    full size, hidden layers 1, 6, 12: the sets of a layer batched above a shared prefix
    against one full pass per set, on the device; equal, ratio, hours for 1,440 clips.
``sweep``
    a study-sized sweep through the stage code (no Snakemake): ``--clips`` synthetic clips of
    RAVDESS lengths (default 1,440) written as WAV; the activation stage over all of them
    (hidden and ffn, as ``config.yaml``), then the ablation stage (zero baseline, 20 ms, mean,
    every hidden unit) over as many as ``--sweep-budget-s`` allows, with the projection to
    every clip.

The tests run it on the CPU with the tiny model (``tests/test_gpu_check.py``) so that it cannot
rot; no test needs a GPU.

    bench/gpu_check.sh                                   # full size, CUDA
    bench/gpu_check.sh --model tiny --device cpu --clips 8 --out /tmp/gpu-check.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons.ablation.engine import Units, ablate_clip  # noqa: E402
from speechneurons.ablation.run import AblationSettings, ablate_clips  # noqa: E402
from speechneurons.ablation.segments import make_segments  # noqa: E402
from speechneurons.activations import pooled_activations  # noqa: E402
from speechneurons.audio import load_waveform  # noqa: E402
from speechneurons.combination import Combination  # noqa: E402
from speechneurons.knockout.forward import knocked_layer  # noqa: E402
from speechneurons.models import load_speech_model  # noqa: E402
from speechneurons.models.families import FAMILIES  # noqa: E402
from speechneurons.models.memory import run_halving  # noqa: E402
from speechneurons.models.tiny import build_tiny_model  # noqa: E402
from speechneurons.models.units import intervene  # noqa: E402

CLIP = REPO / "data/ravdess-mini/Actor_01/03-01-03-01-01-01-01.wav"
STUDY_CLIPS = 1440
#: hidden layers whose knock-out is timed at full size (interpolated over the others)
KNOCKED = (1, 6, 12)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, object]:
    """(seconds, result) of ``fn()``, the device synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def model_folder(kind: str, workdir: Path) -> Path:
    """``tiny`` (the demo's seeded WavLM) or ``full`` (random ``WavLMConfig()``, the Base Plus
    shape, 94 M parameters: the speed of the real model, no download), else a folder."""
    if kind == "tiny":
        return build_tiny_model(workdir / "tiny", seed=0)
    if kind == "full":
        from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

        torch.manual_seed(0)
        WavLMModel(WavLMConfig()).save_pretrained(workdir / "full")
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(workdir / "full")
        return workdir / "full"
    if kind == "large":
        from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

        torch.manual_seed(0)
        config = WavLMConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                             intermediate_size=4096, do_stable_layer_norm=True, feat_extract_norm="layer")
        WavLMModel(config).save_pretrained(workdir / "large")
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(workdir / "large")
        return workdir / "large"
    return Path(kind)


def environment(device: torch.device, threads: int) -> dict:
    import captum
    import transformers

    out = {"device": str(device), "python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "captum": captum.__version__, "cpu_threads": threads}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                   matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    return out


def one_pass_per_set(model, wave: torch.Tensor, layer: int, sets: list) -> np.ndarray:
    """The knock-out before issue 22: a full forward pass of the clip ([1, samples]) per set."""
    wanted = [("hidden", k) for k in range(layer, model.num_layers + 1)]
    rows = []
    for s in sets:
        neurons = [torch.tensor(s.neurons, device=model.device)]
        values = [torch.tensor(s.values, dtype=torch.float32, device=model.device)]
        with torch.inference_mode(), intervene(model.family, model.model, "hidden", layer, neurons, values):
            got = model.read(wave, wanted)
        rows.append(torch.cat([got[w][0].mean(dim=0) for w in wanted]).cpu().numpy())
    return np.vstack(rows)


def random_sets(count: int, width: int, units: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [SimpleNamespace(neurons=sorted(rng.choice(width, units, replace=False).tolist()),
                            values=rng.normal(size=units).tolist()) for _ in range(count)]


def model_checks(device: torch.device, workdir: Path) -> dict:
    """Every family and layout on ``device``: HF hidden states, Captum, knock-out batching."""
    from captum.attr import FeatureAblation

    layouts = [(f, s) for f in sorted(FAMILIES) for s in (False, True)
               if s is False or FAMILIES[f].stable_layer_norm_available]
    out = {}
    for family, stable in layouts:
        model = load_speech_model(str(build_tiny_model(workdir / f"{family}-{stable}", family, seed=3,
                                                       stable_layer_norm=stable)), device=str(device))
        generator = torch.Generator().manual_seed(4)
        wave = (torch.randn(2, 8_000, generator=generator) * 0.1).to(device)
        layers = range(model.num_layers + 1)
        with torch.inference_mode():
            got = model.read(wave, [("hidden", k) for k in layers])
            states = model.model(model.normalize(wave), output_hidden_states=True).hidden_states
        hidden = max(float((got[("hidden", k)] - states[k]).abs().max()) for k in layers)

        one = wave[0, :6_400]
        segments = make_segments(len(one), 40, 16_000, model.hop_samples)
        units = Units(sites=("hidden",), layers=(1, 2), neurons=(3, 30)).resolve(model)
        result = ablate_clip(model, one, segments, units, reduction="mean", perturbations_per_eval=4)
        captum = 0.0
        for row, (layer, neuron) in enumerate([(1, 3), (1, 30), (2, 3), (2, 30)]):
            def forward(w, layer=layer, neuron=neuron):
                return model.model(model.normalize(w), output_hidden_states=True).hidden_states[layer][..., neuron].mean(1)

            with torch.no_grad():
                expected = FeatureAblation(forward).attribute(
                    one[None], baselines=0.0, feature_mask=segments.sample_to_segment(device)[None],
                    perturbations_per_eval=4)[0, segments.starts].cpu()
            captum = max(captum, float((result.attributions[row] - expected).abs().max()))

        sets = random_sets(6, model.hidden_size, 3, seed=5)
        knock = max(float(np.abs(knocked_layer(model, one[None], "hidden", layer, sets, batch=4)
                                 - one_pass_per_set(model, one[None], layer, sets)).max()) for layer in (1, 2))
        out[f"{family}-{'stable' if stable else 'post'}"] = {
            "hidden_states_max_abs_difference": hidden, "engine_vs_captum_max_abs_difference": captum,
            "knockout_batched_vs_one_pass_max_abs_difference": knock}
    tolerance = 1e-5
    worst = max(max(v.values()) for v in out.values())
    return {"layouts": out, "tolerance": tolerance, "worst": worst, "passed": worst <= tolerance}


def engine_device_vs_cpu(model_dir: Path, device: torch.device, batch: int) -> dict:
    """The engine on every hidden unit of one real clip, on ``device`` and on the CPU."""
    wave = torch.from_numpy(load_waveform(CLIP))

    def attributions(where: str) -> torch.Tensor:
        model = load_speech_model(str(model_dir), device=where)
        segments = make_segments(len(wave), 20, model.sample_rate, model.hop_samples)
        units = Units(sites=("hidden",)).resolve(model)
        return ablate_clip(model, wave, segments, units, perturbations_per_eval=batch).attributions

    reference = attributions("cpu")
    scale = float(reference.abs().max())
    out = {"clip": CLIP.name, "units": int(reference.shape[0]), "segments": int(reference.shape[1]),
           "max_abs_attribution_cpu": scale}
    if device.type == "cuda":
        allowed = torch.backends.cudnn.allow_tf32
        for tf32 in (True, False):
            torch.backends.cudnn.allow_tf32 = tf32
            difference = float((attributions(str(device)) - reference).abs().max())
            out[f"tf32_conv_{'on' if tf32 else 'off'}_max_abs_difference"] = difference
        torch.backends.cudnn.allow_tf32 = allowed
        worst = out["tf32_conv_off_max_abs_difference"]
    else:
        worst = out["max_abs_difference"] = float((attributions(str(device)) - reference).abs().max())
    # strict fp32 on the device must agree with the CPU to float32 rounding of the attribution scale
    out["tolerance"] = 1e-4 * max(scale, 1.0)
    out["passed"] = worst <= out["tolerance"]
    return out


def engine_speed(model_dir: Path, device: torch.device, repeats: int, batches: list[str]) -> dict:
    """Engine and floor at each of ``batches`` (numbers, or ``all``: every segment at once); the
    real-time factor of the engine."""
    model = load_speech_model(str(model_dir), device=str(device))
    wave = torch.from_numpy(load_waveform(CLIP))
    segments = make_segments(len(wave), 20, model.sample_rate, model.hop_samples)
    units = Units(sites=("hidden",)).resolve(model)
    x = wave.to(device)
    clip_s = len(wave) / model.sample_rate
    out = {"clip_seconds": round(clip_s, 3), "segments": len(segments), "units": len(units), "batches": {}}
    for asked in sorted({len(segments) if b == "all" else int(b) for b in batches}):
        def floor(batch: int) -> None:
            with torch.no_grad():
                model.model(model.normalize(x[None]))
                for start in range(0, len(segments), batch):
                    n = min(batch, len(segments) - start)
                    model.model(model.normalize(x.expand(n, -1).clone()))

        engine_s = floor_s = math.inf
        used = asked
        for _ in range(repeats + 1):  # the first run warms up; interleaved so drift hits both alike
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds, result = timed(lambda: ablate_clip(model, wave, segments, units, perturbations_per_eval=asked),
                                    device)
            engine_s, used = min(engine_s, seconds), result.perturbations_per_eval
            floor_s = min(floor_s, timed(lambda: run_halving(floor, used, device, "floor batch"), device)[0])
        row = {"batch_used": used, "engine_s": round(engine_s, 4), "floor_s": round(floor_s, 4),
               "engine_over_floor": round(engine_s / floor_s, 3), "real_time_factor": round(engine_s / clip_s, 4)}
        if device.type == "cuda":
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        out["batches"][str(asked)] = row
    best = min(out["batches"].values(), key=lambda r: r["engine_s"])
    out["best"] = best
    return out


def knockout(model_dir: Path, device: torch.device, batch: int) -> dict:
    """Full-size knock-out on ``device``: batched sets above the prefix against one pass per set."""
    model = load_speech_model(str(model_dir), device=str(device))
    wave = torch.from_numpy(load_waveform(CLIP))[None].to(device)
    sets = random_sets(32, model.hidden_size, 4, seed=0)  # 8 levels x (1 selected + 3 random), 4 units
    layers = [k for k in KNOCKED if k <= model.num_layers] or [model.num_layers]
    rows = {}
    for layer in layers:
        knocked_layer(model, wave, "hidden", layer, sets[:2], batch)  # warm-up
        before, reference = timed(lambda: one_pass_per_set(model, wave, layer, sets), device)
        now, batched = timed(lambda: knocked_layer(model, wave, "hidden", layer, sets, batch), device)
        rows[layer] = {"before_s": round(before, 4), "now_s": round(now, 4), "ratio": round(before / now, 2),
                       "max_abs_difference": float(np.abs(batched - reference).max())}
    every = np.arange(model.num_layers + 1)
    per_clip = {way: float(np.interp(every, layers, [rows[k][f"{way}_s"] for k in layers]).sum())
                for way in ("before", "now")}
    worst = max(r["max_abs_difference"] for r in rows.values())
    return {"sets_per_layer": len(sets), "batch": batch, "layers": {str(k): v for k, v in rows.items()},
            "seconds_per_clip_all_layers": {k: round(v, 3) for k, v in per_clip.items()},
            "ratio_whole_design": round(per_clip["before"] / per_clip["now"], 2),
            "hours_1440_clips": {k: round(v * STUDY_CLIPS / 3600, 3) for k, v in per_clip.items()},
            "tolerance": 1e-4, "passed": worst <= 1e-4}


def write_clips(root: Path, count: int, seed: int) -> pd.DataFrame:
    """``count`` clips of RAVDESS lengths (3.0-4.5 s at 16 kHz): a voiced-like tone with
    harmonics under a slow envelope, plus noise. The speed of a study, nothing about speech."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        n = int(rng.uniform(3.0, 4.5) * 16_000)
        t = np.arange(n) / 16_000
        f0 = rng.uniform(90, 260) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        phase = 2 * np.pi * np.cumsum(f0) / 16_000
        voice = sum(np.sin(h * phase) / h for h in range(1, 6))
        envelope = np.clip(np.sin(np.pi * t / t[-1]) * 1.5, 0, 1)
        wave = 0.2 * envelope * voice + 0.01 * rng.normal(size=n)
        path = f"clip{i:04d}.wav"
        sf.write(root / path, wave.astype(np.float32), 16_000, subtype="PCM_16")
        rows.append({"clip_id": f"clip{i:04d}", "path": path, "speaker": f"s{i % 24:02d}"})
    return pd.DataFrame(rows)


def sweep(model_dir: Path, device: torch.device, clips: int, budget_s: float, batch: int, workdir: Path) -> dict:
    """The activation stage over every clip, the ablation stage over as many as the budget allows."""
    root = workdir / "clips"
    root.mkdir()
    write_s, table = timed(lambda: write_clips(root, clips, seed=1), torch.device("cpu"))
    audio_s = sum(sf.info(str(root / p)).duration for p in table.path)
    model = load_speech_model(str(model_dir), device=str(device))
    activations_s, shard = timed(lambda: pooled_activations(model, table, root, sites=("hidden", "ffn"),
                                                            progress=False), device)
    assert shard.failed.empty, shard.failed
    settings = AblationSettings(units=Units(sites=("hidden",)), combination=Combination("zero", 20, "mean"),
                                perturbations_per_eval=batch)
    done, ablation_s, chunk = 0, 0.0, 8
    while done < clips and ablation_s < budget_s:
        part = table.iloc[done:done + chunk]
        seconds, result = timed(lambda: ablate_clips(model, part, root, settings, progress=False), device)
        assert result.failed.empty, result.failed
        done, ablation_s = done + len(part), ablation_s + seconds
    ablated_audio_s = sum(sf.info(str(root / p)).duration for p in table.path[:done])
    per_clip = ablation_s / done
    return {
        "clips": clips, "audio_hours": round(audio_s / 3600, 3), "write_clips_s": round(write_s, 1),
        "activations": {"sites": ["hidden", "ffn"], "clips": clips, "seconds": round(activations_s, 2),
                        "real_time_factor": round(activations_s / audio_s, 5), "rows": len(shard.pooled)},
        "ablation": {"combination": "zero/20 ms/mean", "units": "every hidden unit", "batch": batch,
                     "clips_timed": done, "seconds": round(ablation_s, 2),
                     "seconds_per_clip": round(per_clip, 4),
                     "real_time_factor": round(ablation_s / ablated_audio_s, 4),
                     f"projected_hours_{clips}_clips": round(per_clip * clips / 3600, 3)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="full",
                        help="full (random WavLM Base Plus shape), large (random WavLM Large shape), tiny, or a folder")
    parser.add_argument("--cudnn-tf32", choices=("on", "off"), default="on",
                        help="cuDNN's TF32 convolutions for every section but engine_device_vs_cpu (torch's default: on)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--clips", type=int, default=STUDY_CLIPS, help="clips of the study-sized sweep")
    parser.add_argument("--sweep-budget-s", type=float, default=120.0,
                        help="seconds of ablation in the sweep (then projected to every clip)")
    parser.add_argument("--batch", type=int, default=0,
                        help="perturbations_per_eval of the sweep and knock-out; 0: every segment at once")
    parser.add_argument("--speed-batches", default="16,64,all",
                        help="perturbations_per_eval values of engine_speed (all: every segment at once)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per batch (after one warm-up)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sections", default="model_checks,engine_device_vs_cpu,engine_speed,knockout,sweep")
    parser.add_argument("--out", default=str(REPO / "bench/results/gpu-check.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = args.cudnn_tf32 == "on"
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device (give --device cpu to check the script)")
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": args.model, "environment": environment(device, args.threads), "seconds": {}}
    failed = []
    batch = args.batch or 10_000  # every segment at once, halved on out of memory
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_dir = model_folder(args.model, workdir)
        sections = {
            "model_checks": lambda: model_checks(device, workdir),
            "engine_device_vs_cpu": lambda: engine_device_vs_cpu(model_dir, device, batch=64),
            "engine_speed": lambda: engine_speed(model_dir, device, args.repeats, args.speed_batches.split(",")),
            "knockout": lambda: knockout(model_dir, device, batch=min(batch, 32)),
            "sweep": lambda: sweep(model_dir, device, args.clips, args.sweep_budget_s, batch, workdir),
        }
        unknown = sorted(set(args.sections.split(",")) - set(sections))
        if unknown:
            parser.error(f"--sections: {unknown} not among {list(sections)}")
        for name in args.sections.split(","):
            start = time.perf_counter()
            try:
                report[name] = sections[name]()
                if report[name].get("passed") is False:
                    failed.append(name)
            except Exception:  # noqa: BLE001 - a section that breaks is recorded, the others run
                report[name] = {"error": traceback.format_exc()}
                failed.append(name)
            report["seconds"][name] = round(time.perf_counter() - start, 1)
            out_path.write_text(json.dumps(report, indent=2) + "\n")
            print(f"{name}: {report['seconds'][name]} s" + (" FAILED" if name in failed else ""), flush=True)
    report["failed"] = failed
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
