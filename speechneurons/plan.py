"""What a config will cost before it runs: forward passes and CPU / GPU hours per stage.

``speechneurons plan --configfile my-study.yaml`` reads the config (on the schema's defaults, as
Snakemake does), counts the clips (``--clips`` / ``--mean-seconds``; else the audio files under
``dataset.root``; else the corpus's full design for RAVDESS) and prints, per model and stage,
the forward passes the stage runs and its hours on this kind of CPU and on one GPU, from
per-pass costs measured by the benchmarks (:data:`MEASURED`). A stage whose single job would
run longer than ``--limit-hours``, or whose jobs would hold more than ``--memory-gib`` in
memory (``compute.memory_gib``: the statistics read the cache in blocks that fit it), is
flagged; a stage that reads the cache in several blocks says how many and what it spills.

The cost model. A forward pass of WavLM Base (94.4 M parameters) costs a measured number of
seconds per second of audio; another model costs that times its parameter count over 94.4 M
(on one H200 WavLM Large's engine cost 2.9x Base's for 3.3x the parameters: the scaling
overstates large models slightly). The ablation stage runs 1 + segments passes per clip and
combination (the engine is within 1.06x (CPU) and 1.18x (GPU) of that floor); the activation
stage one pass per clip and model; the knock-out the measured seconds per clip of its bench
(32 sets over 13 layers) scaled by sets and layers (both CPU figures by the engine's speed on
the day against the day they were measured); Praat's prosody track its measured seconds per
second of audio, once for every model; the SAEs (``sae.enabled``) a forward pass per clip for
their frames and, per layer, two trainings of ``sae.steps`` steps at the bench's measured cost
per step scaled by batch x width x latents (on a GPU an estimate from the step's floating-point
work, not a measurement); the reliability checks their measured
costs scaled by clips, combinations and steps; the CPU statistics their measured seconds
scaled by clips x units (selectivity, bootstrap) or by layers (probes). Each number says what
it rests on (``basis``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: WavLM Base Plus's parameters, the model every per-pass cost below was measured with
REFERENCE_PARAMETERS = 94.4e6

#: Per-pass and per-stage costs measured here, with the file that holds each measurement.
MEASURED = {
    # seconds of a batched ablation pass per second of audio (174 + 1 passes of a 3.47 s clip)
    # (this 2-core machine ran the same bench at 47.5 s on 2026-11-24 and 88.9 s on 2026-12-04:
    # calibrate to yours with --engine-json)
    "engine_cpu": (88.919 / (175 * 3.47), "bench/results/full-cpu-2026-12-04.json (2 threads)"),
    # on a GPU the stage's overhead (loading, summaries, curves to the CPU) is 1.37x the engine's
    # time: the sweep's seconds per clip over its passes (189 of a 3.75 s clip on average)
    "engine_gpu": (0.2832 / (189 * 3.75), "bench/results/gpu-check-h200.json (the ablation sweep)"),
    # seconds of the activation stage per second of audio (one pass per clip, hidden and ffn),
    # measured when the engine ran at ENGINE_CPU_THEN (so scaled by engine_cpu / ENGINE_CPU_THEN)
    "activations_cpu": (0.3511 / 3.5, "bench/results/probes-knockout-cpu.json (one pass, 3.5 s)"),
    "activations_gpu": (25.93 / 5396.4, "bench/results/gpu-check-h200.json (1,440 clips)"),
    # seconds per clip of the knock-out: 32 sets over 13 hidden layers, a 3.3 s clip (at ENGINE_CPU_THEN)
    "knockout_cpu": (57.6 / 3.3, "bench/results/knockout-cpu.json"),
    "knockout_gpu": (0.246 / 3.47, "bench/results/gpu-check-h200.json"),
    # seconds per 768-unit layer of the probes (1,440 clips, 4 factors, 2,000 permutations, 1 thread):
    # 5.01 s for 20 refitted permutations, times 12.1 / 7.7 (the hat-matrix null at 2,000 against
    # the refits at 20, side by side on 2026-12-07)
    "probes_cpu": (5.01 * 12.1 / 7.7, "bench/results/probes-cpu.json, bench/results/probe-permutations-cpu.json"),
    # seconds of the selectivity stage for 1,440 clips x 46,848 units, 1,000 first flips: 70.6 s for
    # Hotelling's T^2, times 1.16 (the repeated-measures F against it, side by side on 2026-12-07); a
    # strongly selective unit adds its sign-flip tail (about 0.066 s), which no plan can know
    "selectivity_cpu": (70.6 * 1.16, "bench/results/selectivity-cpu.json"),
    # seconds per bootstrap resample at 46,848 units (1,440 clips)
    "bootstrap_cpu": (0.323, "bench/results/bootstrap-cpu.json"),
    # seconds of Praat's prosody track per second of audio (one thread; 3.1 % of the activation
    # stage's time per clip at 2 threads in the same run)
    "prosody_cpu": (0.0121 * 8 / 29.50, "bench/results/prosody-cost-cpu.json"),
    # seconds of one SAE training step (batch 4,096 frames of 768, 4,096 latents, k = 32; 2 threads)
    # and of one held-out evaluation (66,000 frames); a step scales with batch x width x latents
    "sae_step_cpu": (0.9706, "bench/results/sae-cpu.json"),
    "sae_evaluation_cpu": (5.693, "bench/results/sae-cpu.json"),
}


#: seconds per layer of the probes at 20 and at 2,000 permutations (hat-matrix null;
#: bench/results/probe-permutations-cpu.json, 2026-12-07)
PROBES_AT_20, PROBES_AT_2000 = 6.8, 12.1


def probe_permutation_scale(permutations: int) -> float:
    """A layer's probe time at ``permutations`` relative to the measured 2,000: a fixed part (the
    fits, one per fold) and a part linear in the relabellings (one product each)."""
    per = (PROBES_AT_2000 - PROBES_AT_20) / 1980
    fixed = PROBES_AT_20 - 20 * per
    return (fixed + per * permutations) / (fixed + per * 2000)
#: an SAE step's floating-point work at the bench's shape (encoder, dense decoder, their gradients),
#: and the rate an H200 is assumed to sustain on it: an estimate, not a measurement
SAE_STEP_FLOP, GPU_SUSTAINED_FLOPS = 6 * 4096 * 768 * 4096 * 2, 20e12
#: the engine's CPU cost per pass and audio second when activations_cpu and knockout_cpu were measured
#: (bench/results/full-cpu.json: the same machine, a faster day)
ENGINE_CPU_THEN = 47.459 / (175 * 3.47)
#: RAVDESS speech: 1,440 clips; mean duration of the bundled clips
RAVDESS_CLIPS, RAVDESS_MEAN_SECONDS = 1440, 3.69


#: multiply-adds per output frame (20 ms) of the CNN feature encoder every supported family shares:
#: 512 channels, kernels (10, 3, 3, 3, 3, 2, 2), strides (5, 2, 2, 2, 2, 2, 2)
FRONT_END_MACS_PER_FRAME = sum(2 ** (6 - i) * c_in * 512 * k for i, (c_in, k) in
                               enumerate([(1, 10), (512, 3), (512, 3), (512, 3), (512, 3), (512, 2), (512, 2)]))


def front_end_layers(hidden: int, ffn: int) -> float:
    """What the front end (CNN encoder and positional convolution, 128 taps in 16 groups) costs,
    in transformer layers (4 h^2 + 2 h ffn multiply-adds per frame): 7.6 for a Base, 4.6 for a
    Large. With it the plan's randomisation estimate for the default cascade is within 2 % of
    bench/results/randomisation-cpu.json (2.34x against 2.38x measured)."""
    return (FRONT_END_MACS_PER_FRAME + hidden * hidden / 16 * 128) / (4 * hidden**2 + 2 * hidden * ffn)


@dataclass(frozen=True)
class Corpus:
    """How many clips and how long, and where those numbers come from."""

    clips: int
    mean_seconds: float
    basis: str


@dataclass(frozen=True)
class Stage:
    """One stage of one model: its passes, hours and what the estimate rests on."""

    model: str
    stage: str
    passes: float
    cpu_hours: float
    gpu_hours: float | None
    jobs: int
    basis: str
    warning: str = ""


def with_schema_defaults(config: Any, schema: dict, root: dict | None = None) -> Any:
    """``config`` with every default of ``schema`` filled in where the config is silent (what
    Snakemake's ``validate(..., set_default=True)`` does), at any depth."""
    from speechneurons.config import resolved

    root = schema if root is None else root
    schema = resolved(schema, root)
    if not isinstance(config, dict) or "properties" not in schema:
        return config
    out = dict(config)
    for key, sub in schema["properties"].items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if key in out:
            out[key] = with_schema_defaults(out[key], sub, root)
    return out


def read_config(path: str | Path, repo: Path) -> dict:
    """The config of ``path`` on the schema's defaults, old keys renamed (as the workflow reads it)."""
    from speechneurons.config import apply_renamed_keys

    config = yaml.safe_load(Path(path).read_text()) or {}
    apply_renamed_keys(config)
    if "ravdess_path" in config:
        config.setdefault("dataset", {})["root"] = config.pop("ravdess_path")
    schema = yaml.safe_load((repo / "schemas/config.schema.yaml").read_text())
    return with_schema_defaults(config, schema)


def count_clips(config: dict, clips: int | None, mean_seconds: float | None) -> Corpus:
    """The study's clips: the flags, else the audio under ``dataset.root``, else RAVDESS's design."""
    if clips and mean_seconds:
        return Corpus(clips, mean_seconds, "--clips and --mean-seconds")
    root = config["dataset"].get("root")
    if root and Path(root).is_dir():
        import soundfile as sf

        from speechneurons.datasets.index import audio_files

        seconds = []
        for path in audio_files(Path(root)):
            try:
                seconds.append(sf.info(str(path)).duration)
            except (RuntimeError, sf.LibsndfileError):
                continue
        if seconds:
            return Corpus(clips or len(seconds), mean_seconds or float(sum(seconds) / len(seconds)),
                          f"the {len(seconds)} readable audio files under dataset.root (before the index's filters)")
    if config["dataset"]["name"] == "ravdess":
        return Corpus(clips or RAVDESS_CLIPS, mean_seconds or RAVDESS_MEAN_SECONDS,
                      "RAVDESS speech, 1,440 clips; mean duration of the 8 bundled clips (dataset.root not found)")
    raise ValueError(f"plan: dataset.root={root!r} is not a folder here; give --clips and --mean-seconds "
                     f"for the {config['dataset']['name']} study")


def model_shape(model: dict) -> tuple[float, int, int, int, str]:
    """(parameters, transformer layers, hidden size, ffn size, basis) of a config's model, from its
    ``config.json`` (a local folder or the Hugging Face cache), else from its name."""
    try:
        import torch
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(model["name_or_path"], revision=model.get("revision"),
                                            local_files_only=True)  # a plan never waits on the hub
        with torch.device("meta"):
            count = sum(p.numel() for p in AutoModel.from_config(config).parameters())
        return (float(count), int(config.num_hidden_layers), int(config.hidden_size),
                int(config.intermediate_size), "its config.json")
    except Exception:  # noqa: BLE001 - no config reachable: the name says Base or Large
        if model.get("build_tiny"):
            return 0.2e6, 2, 32, 64, "the demo's tiny shape"
        if "large" in str(model["name_or_path"]).lower():
            return 315.5e6, 24, 1024, 4096, "its name (a Large shape; config.json not found)"
        return REFERENCE_PARAMETERS, 12, 768, 3072, "its name (a Base shape; config.json not found)"


def engine_cost(path: str | Path) -> tuple[float, str]:
    """(seconds per pass per second of audio, basis) from a JSON of ``bench/ablation_speed.py``
    run on the machine the study will use (a Base-sized ``--model full``)."""
    import json

    report = json.loads(Path(path).read_text())
    passes = report["segments"] + 1
    scale = REFERENCE_PARAMETERS / (report["parameters_m"] * 1e6)
    return (report["seconds"]["engine_all_units"] / (passes * report["clip_seconds"]) * scale,
            f"{path} ({report['device']}, {report['threads']} threads)")


def _hours(seconds: float) -> float:
    return seconds / 3600


def add_sae(add, sae: dict, clips: int, audio: float, width: int, scale: float, cpu_speed: float,
            shards: int) -> None:
    """The SAE stages of one model: the frames (a forward pass per clip, as the activation stage)
    and per layer two trainings (the SAE and its second seed) of at most ``sae.steps`` steps, each
    step scaled from the bench by batch x width x latents; the GPU figure for training is an
    estimate (:data:`SAE_STEP_FLOP` at :data:`GPU_SUSTAINED_FLOPS`)."""
    layers = len(sae["layers"])
    add("sae: frames", clips, audio * MEASURED["activations_cpu"][0] * scale * cpu_speed,
        audio * MEASURED["activations_gpu"][0] * scale, shards, "one pass per clip")
    shape = sae["batch_frames"] * width * sae["latents"] / (4096 * 768 * 4096)
    # an evaluation reads the held-out speakers' frames (20 ms each): 66,000 in the bench
    held_out = audio * sae["held_out_share"] / 0.02 / 66_000 * (width / 768) * (sae["latents"] / 4096)
    evaluations = sae["steps"] / sae["eval_every"]
    one = (sae["steps"] * MEASURED["sae_step_cpu"][0] * shape
           + evaluations * MEASURED["sae_evaluation_cpu"][0] * held_out)
    gpu = sae["steps"] * SAE_STEP_FLOP * shape / GPU_SUSTAINED_FLOPS
    add("sae: training", 0, 2 * layers * one, 2 * layers * gpu, layers,
        f"{layers} layer(s) x 2 seeds x at most {sae['steps']} steps (fewer when it stops early); "
        "GPU hours estimated, not measured")
    # every clip's frames encoded (and pooled) once per layer: at most an evaluation's cost per frame
    # (an evaluation also decodes); no forward pass
    encode = audio / 0.02 / 66_000 * (width / 768) * (sae["latents"] / 4096) * MEASURED["sae_evaluation_cpu"][0]
    add("sae: latents", 0, layers * encode, None, shards,
        "every clip's stored frames encoded by its layer's SAE and pooled, one job per shard (at most)")


def plan_stages(config: dict, corpus: Corpus, limit_hours: float, memory_gib: float) -> list[Stage]:
    """Every costed stage of every model of ``config``."""
    from speechneurons.datasets import load_corpus
    from speechneurons.stats.selectivity import BYTES_PER_VALUE, reserved_gib
    from speechneurons.study import study_models

    spec = load_corpus(config["dataset"]["name"]).spec if config["dataset"]["name"] != "manifest" else None
    levels = len(spec.levels(spec.target)) if spec is not None else 8
    n, seconds = corpus.clips, corpus.mean_seconds
    audio = n * seconds
    shards = int(config["compute"]["shards"])
    ablation = config["ablation"]
    combos = [(b, int(ms), r) for b in ablation["baselines"] for ms in ablation["segment_ms"]
              for r in ablation["reductions"]]
    stages: list[Stage] = []
    for name, model in study_models(config).items():
        parameters, layers, hidden, ffn, shape_basis = model_shape(model)
        scale = parameters / REFERENCE_PARAMETERS
        cpu_speed = MEASURED["engine_cpu"][0] / ENGINE_CPU_THEN  # the CPU's speed against then
        basis = f"{parameters / 1e6:.1f} M parameters ({shape_basis})"
        units = sum((layers + 1) * hidden if s == "hidden" else layers * ffn for s in config["activations"]["sites"])
        sae_layers = len(config["sae"]["layers"]) if config["sae"]["enabled"] else 0
        units += sae_layers * int(config["sae"]["latents"])  # the sae site's latents join the cache

        def add(stage: str, passes: float, cpu_s: float, gpu_s: float | None, jobs: int, why: str,
                memory: float = 0.0) -> None:
            flags = [f"a job runs over {limit_hours:g} h on {where}"
                     for where, total in (("the CPU", cpu_s), ("one GPU", gpu_s))
                     if total is not None and total / max(jobs, 1) > limit_hours * 3600]
            if memory > memory_gib:
                flags.append(f"needs about {memory:.0f} GiB (> {memory_gib:g})")
            warning = "; ".join(flags)
            stages.append(Stage(name, stage, passes, _hours(cpu_s), None if gpu_s is None else _hours(gpu_s),
                                jobs, f"{why}; {basis}", warning))

        add("activations", n, audio * MEASURED["activations_cpu"][0] * scale * cpu_speed,
            audio * MEASURED["activations_gpu"][0] * scale, shards, "one pass per clip")
        passes = sum(n * (1 + math.ceil(seconds * 1000 / ms)) for _, ms, _ in combos)
        add("ablation", passes, passes * seconds * MEASURED["engine_cpu"][0] * scale,
            passes * seconds * MEASURED["engine_gpu"][0] * scale, shards * len(combos),
            f"{len(combos)} combination(s) x (1 + segments) passes per clip")
        if config["knockout"]["enabled"]:
            knocked = layers + 1 if config["knockout"]["layers"] == "all" else len(config["knockout"]["layers"])
            if sae_layers and config["sae"]["site"] == "hidden":  # latent sets, knocked out like a layer's
                knocked += sum(config["knockout"]["layers"] == "all" or k in config["knockout"]["layers"]
                               for k in config["sae"]["layers"])
            sets = levels * (1 + int(config["knockout"]["random_sets"]))
            factor = scale * seconds * (sets / 32) * (knocked / 13)
            add("knockout", n * knocked * sets, n * MEASURED["knockout_cpu"][0] * factor * cpu_speed,
                n * MEASURED["knockout_gpu"][0] * factor, shards,
                f"{sets} sets x {knocked} layers per clip, batched above a shared prefix")
        if config["reliability"]["enabled"]:
            deletion = config["reliability"]["deletion"]
            # the deletion rows beyond the sweep: each unit's and order's inner steps, all deleted
            extra = (deletion["units"] + deletion["random_orders"]) * (deletion["steps"] - 1) + 1
            passes = sum(deletion["clips"] * (1 + math.ceil(seconds * 1000 / ms) + extra) for _, ms, _ in combos)
            add("reliability: deletion", passes, passes * seconds * MEASURED["engine_cpu"][0] * scale,
                passes * seconds * MEASURED["engine_gpu"][0] * scale, len(combos), "an ablation sweep and the deletion steps")
            randomised = config["reliability"]["randomisation"]
            stepped = range(1, layers + 1) if randomised["layers"] == "all" else randomised["layers"]
            # trained and all-random sweeps in full; step k from the cached state entering layer k
            # runs layers k..L only, its front end skipped: (L - k + 1) / (L + front end) of a pass
            front = front_end_layers(hidden, ffn)
            sweeps = 2 + sum((layers - k + 1) / (layers + front) for k in stepped)
            passes = randomised["clips"] * sweeps * (1 + math.ceil(seconds * 1000 / combos[0][1]))
            add("reliability: randomisation", passes, passes * seconds * MEASURED["engine_cpu"][0] * scale,
                passes * seconds * MEASURED["engine_gpu"][0] * scale, 1,
                f"{sweeps:.3g} ablation sweeps' worth per clip (trained, each layer from its cached input, all)")
            values = n * units / (1440 * 46848)
            add("reliability: bootstrap", 0, config["reliability"]["bootstrap"]["resamples"]
                * MEASURED["bootstrap_cpu"][0] * values, None, 1, "CPU statistics, per resample")
        values = n * units / (1440 * 46848)
        budget = float(config["compute"]["memory_gib"])
        reserved = reserved_gib(units, len(spec.factor_names) if spec is not None else 4)
        whole = reserved + n * units * BYTES_PER_VALUE / 2**30
        why = f"CPU statistics over {n} clips x {units} units"
        if whole > budget > reserved:
            blocks = math.ceil((whole - reserved) / (budget - reserved))
            why += (f", in about {blocks} blocks of units within compute.memory_gib = {budget:g} "
                    f"(spilling {n * units * 4 / 2**30:.1f} GiB to $TMPDIR)")
        add("selectivity", 0, MEASURED["selectivity_cpu"][0] * values * config["stats"]["permutations"] / 1000,
            None, 1, why, max(min(whole, budget), reserved))
        if config["probes"]["enabled"]:
            count = {"hidden": layers + 1, "ffn": layers, "sae": sae_layers}
            probed = sum(count[s] for s in config["probes"]["sites"])
            width = max({"hidden": hidden, "ffn": ffn, "sae": int(config["sae"]["latents"])}[s]
                        for s in config["probes"]["sites"])
            add("probes", 0, probed * MEASURED["probes_cpu"][0] * (n / 1440) * (width / 768) ** 2
                * probe_permutation_scale(config["probes"]["permutations"]), None, 1,
                f"CPU statistics, {probed} layers")
        if config["sae"]["enabled"]:
            add_sae(add, config["sae"], n, audio, hidden if config["sae"]["site"] == "hidden" else ffn, scale,
                    cpu_speed, shards)
    # Praat's track reads the audio once for every model of the study
    stages.append(Stage("(every model)", "prosody (Praat)", 0, _hours(audio * MEASURED["prosody_cpu"][0]), None,
                        shards, "Praat's F0, level and pauses of every clip once, on the CPU", ""))
    return stages


def format_plan(stages: list[Stage], corpus: Corpus) -> str:
    """The plan as a text table, with totals and the warnings."""
    lines = [f"clips: {corpus.clips} x {corpus.mean_seconds:.2f} s on average ({corpus.basis})", "",
             f"{'model':<18} {'stage':<28} {'forward passes':>15} {'CPU hours':>10} {'GPU hours':>10} {'jobs':>5}"]
    for s in stages:
        gpu = "-" if s.gpu_hours is None else f"{s.gpu_hours:.3g}"
        passes = "-" if not s.passes else f"{s.passes:,.0f}"
        lines.append(f"{s.model:<18} {s.stage:<28} {passes:>15} {s.cpu_hours:>10.3g} {gpu:>10} {s.jobs:>5}"
                     + (f"   ! {s.warning}" if s.warning else ""))
    cpu = sum(s.cpu_hours for s in stages)
    gpu = sum(s.gpu_hours if s.gpu_hours is not None else s.cpu_hours for s in stages)
    lines += ["", f"total: {cpu:.3g} CPU hours on this kind of CPU (2 threads), or {gpu:.3g} hours with "
                  "the model stages on one GPU (H200) and the statistics on the CPU"]
    lines += ["", "measured costs it scales (speechneurons/plan.py):"]
    lines += [f"  {k}: {v[1]}" for k, v in MEASURED.items()]
    return "\n".join(lines)


def memory_gib_here() -> float:
    """This machine's memory in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
