"""Check ``speechneurons plan`` against a measured stage: the ablation stage on this machine.

The stage code (:func:`speechneurons.ablation.run.ablate_clips`, no Snakemake) ablates the 8
bundled RAVDESS clips with a randomly initialised WavLM Base (``WavLMConfig()``, 94.4 M
parameters, the shape of ``microsoft/wavlm-base-plus``) at the full study's first combination
(zero baseline, 20 ms, mean), every hidden unit, ``compute.perturbations_per_eval`` 16, threads
pinned to ``--threads``. The plan's estimate for the same clips (their count and mean duration,
``config/ravdess-full.yaml`` with that one combination) is set beside the measured time.

    python bench/plan_check.py --out bench/results/plan-check-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import soundfile as sf
import torch
from threadpoolctl import threadpool_limits

from common import REPO, write_report

sys.path.insert(0, str(REPO))

from speechneurons import plan  # noqa: E402
from speechneurons.ablation.engine import Units  # noqa: E402
from speechneurons.ablation.run import AblationSettings, ablate_clips  # noqa: E402
from speechneurons.combination import Combination  # noqa: E402
from speechneurons.models import load_speech_model  # noqa: E402

ROOT = REPO / "data/ravdess-mini"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    paths = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("Actor_*/*.wav"))
    clips = pd.DataFrame({"clip_id": [Path(p).stem for p in paths], "path": paths})
    seconds = [sf.info(str(ROOT / p)).duration for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        WavLMModel(WavLMConfig()).save_pretrained(tmp)
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(tmp)
        model = load_speech_model(tmp)
    settings = AblationSettings(units=Units(sites=("hidden",)), combination=Combination("zero", 20, "mean"),
                                perturbations_per_eval=16)
    with threadpool_limits(args.threads):
        start = time.perf_counter()
        result = ablate_clips(model, clips, ROOT, settings, progress=False)
        measured = time.perf_counter() - start
    assert result.failed.empty, result.failed

    config = plan.read_config(REPO / "config/ravdess-full.yaml", REPO)
    config["ablation"].update(baselines=["zero"], segment_ms=[20], reductions=["mean"])
    corpus = plan.Corpus(len(clips), sum(seconds) / len(seconds), "the 8 bundled clips")
    stage = next(s for s in plan.plan_stages(config, corpus, 24, 1000) if s.stage == "ablation")
    report = {
        "clips": len(clips), "mean_seconds": round(corpus.mean_seconds, 3), "threads": args.threads,
        "model": "random WavLM Base (WavLMConfig(), 94.4 M parameters)",
        "measured_s": round(measured, 1), "plan_s": round(stage.cpu_hours * 3600, 1),
        "plan_over_measured": round(stage.cpu_hours * 3600 / measured, 3), "plan_passes": stage.passes,
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
