"""Benchmark: training a TopK SAE at full size on this machine (issue 24's cost).

WavLM Base's hidden layer over RAVDESS speech: 1,440 clips of 3.69 s on average are about
265,000 frames of 768 values; the training speakers' share (18 of 24 actors) about 199,000,
the held-out speakers' 66,000. The frames are synthetic (a planted sparse dictionary of 8,192
atoms plus noise): the cost of a step depends on the shapes only. The script times
``--steps`` training steps of ``speechneurons.sae.train_sae`` (batch ``--batch``, the default
settings' dictionary of 4,096 latents and k = 32, AuxK included) and one held-out evaluation,
with the threads pinned, and extrapolates to the default ``sae.steps`` with an evaluation every
``sae.eval_every`` steps.

    python bench/sae_speed.py --threads 2 --out bench/results/sae-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-frames", type=int, default=199_000)
    parser.add_argument("--held-out-frames", type=int, default=66_000)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)

    import torch

    from speechneurons.sae_site import TopKSAE
    from speechneurons.sae import SAESettings, train_sae, variance_explained

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)

    def frames(n: int) -> torch.Tensor:
        atoms = torch.randn(args.width, 8192, generator=torch.Generator().manual_seed(1))
        atoms /= atoms.norm(dim=0, keepdim=True)
        out = torch.empty(n, args.width)
        for start in range(0, n, 20_000):  # 20,000 frames of 24 active atoms at a time
            rows = min(20_000, n - start)
            codes = torch.zeros(rows, 8192)
            chosen = torch.randint(8192, (rows, 24), generator=generator)
            codes.scatter_(1, chosen, torch.rand(rows, 24, generator=generator))
            out[start:start + rows] = codes @ atoms.t() + 0.05 * torch.randn(rows, args.width, generator=generator)
        return out

    train, held_out = frames(args.train_frames), frames(args.held_out_frames)
    defaults = SAESettings()
    settings = replace(defaults, steps=args.steps, eval_every=10 ** 9, max_frames=args.train_frames)
    train_sae(train[:10_000], held_out[:1000], replace(settings, steps=2))  # warm-up
    start = time.perf_counter()
    sae, record = train_sae(train, held_out[:1000], settings)
    step_s = (time.perf_counter() - start) / args.steps
    start = time.perf_counter()
    variance_explained(sae, held_out)
    evaluation_s = time.perf_counter() - start
    evaluations = defaults.steps / defaults.eval_every
    total_s = defaults.steps * step_s + evaluations * evaluation_s
    report = {
        "what": "TopK SAE training step and held-out evaluation at WavLM Base x RAVDESS size",
        "train_frames": args.train_frames, "held_out_frames": args.held_out_frames, "width": args.width,
        "latents": defaults.latents, "k": defaults.k, "batch_frames": defaults.batch_frames,
        "threads": args.threads, "timed_steps": args.steps, "seconds_per_step": step_s,
        "seconds_per_evaluation": evaluation_s,
        "default_run_seconds": total_s, "default_run": f"{defaults.steps} steps, {evaluations:g} evaluations",
        "parameters": sum(p.numel() for p in TopKSAE(args.width, defaults.latents, defaults.k).parameters()),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
