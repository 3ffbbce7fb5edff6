"""Benchmark: the prosody stage against the activation stage, per clip, at full size.

Both stages run their own package functions on the same clips in one process,
each writing its parquet as the rule does:

(a) activations: ``pooled_activations`` of a randomly initialised WavLM Base
    (``WavLMConfig()``, 94.4 M parameters, the Base Plus shape: the speed of
    the real model, no download) over both cached sites, 46,848 units, written
    clip by clip with ``provenance.table_writer``;
(b) prosody: ``prosody_tracks`` (Praat's pitch, intensity, harmonicity and
    pitch accents per 20 ms frame, through parselmouth) with the RAVDESS
    study's pitch ranges per sex, written with ``provenance.write_table``.

The bundled eight RAVDESS clips (3.3-4.1 s, the corpus's lengths) are run
``--passes`` times, alternating (a) and (b), with torch's threads and every
BLAS pool pinned to ``--threads``; the cost per clip is what a study of any
size multiplies, so (b) / (a) is the full-size ratio. Praat runs on one
thread whatever the setting.

    python bench/prosody_cost.py --threads 2 --out bench/results/prosody-cost-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)

    import pandas as pd
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    from speechneurons import provenance
    from speechneurons.activations import pooled_activations
    from speechneurons.datasets import load_corpus
    from speechneurons.datasets.index import build_index
    from speechneurons.models import load_speech_model
    from speechneurons.prosody import ProsodySettings, prosody_tracks
    from speechneurons.schemas import ACTIVATION_SCHEMA, empty_table

    torch.set_num_threads(args.threads)
    root = REPO / "data/ravdess-mini"
    clips = build_index(load_corpus("ravdess", {}), root, progress=False).clips
    settings = ProsodySettings(pitch_range={"female": [100, 500], "male": [75, 300]})
    seconds = {"activations": [], "prosody": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        torch.manual_seed(0)
        WavLMModel(WavLMConfig()).save_pretrained(work / "full")
        Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(work / "full")
        model = load_speech_model(str(work / "full"), None, "cpu")
        record = {"bench": "prosody_cost"}
        for n in range(args.passes):
            start = time.perf_counter()
            with provenance.table_writer(work / f"act-{n}.parquet", record, empty_table(ACTIVATION_SCHEMA)) as sink:
                pooled_activations(model, clips, root, ("hidden", "ffn"), progress=False, sink=sink)
            seconds["activations"].append(time.perf_counter() - start)
            start = time.perf_counter()
            tracks, _ = prosody_tracks(clips, root, settings, group="gender", progress=False)
            provenance.write_table(tracks, work / f"prosody-{n}.parquet", record)
            seconds["prosody"].append(time.perf_counter() - start)
            print(f"pass {n}: activations {seconds['activations'][-1]:.2f} s, prosody {seconds['prosody'][-1]:.2f} s")
    audio_s = float(clips["duration_s"].sum())
    best = {k: min(v) for k, v in seconds.items()}
    report = {
        "what": "prosody stage vs activation stage (WavLM Base, hidden + ffn), per clip, same process",
        "clips": len(clips), "audio_seconds": audio_s, "threads": args.threads, "passes": args.passes,
        "seconds": seconds, "per_clip_s": {k: v / len(clips) for k, v in best.items()},
        "prosody_over_activations": best["prosody"] / best["activations"],
        "prosody_over_activations_each_pass": [p / a for p, a in zip(seconds["prosody"], seconds["activations"])],
        "ravdess_full_estimate_s": {k: v / len(clips) * 1440 for k, v in best.items()},
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "versions": {"torch": torch.__version__, "parselmouth": __import__("parselmouth").VERSION,
                     "pandas": pd.__version__},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
