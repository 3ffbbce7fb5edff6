"""Benchmark: the cost of each reliability check at full size (docs/reliability.md).

- Agreement: synthetic attribution files of ``--agreement-clips`` clips x 900 units (a full
  selection: 4 per (site, layer) and emotion, 25 site-layers, 8 emotions, plus controls) under two
  combinations, 20 ms and 100 ms segments of a 3.5 s clip; time per (clip, pair), multiplied out to
  1,440 clips and the 24 pairs of the full config (3 baselines x 2 lengths x 2 reductions).
- Deletion and randomisation: a randomly initialised WavLM Base (``WavLMConfig()``, 94 M
  parameters) saved and loaded through ``from_pretrained``, on a real 3.47 s RAVDESS clip (174
  segments of 20 ms), 8 units spread over the 25 site-layers. Deletion: one (clip, combination)
  with the default 10 steps and 3 random orders. Randomisation: the trained sweep, the top step and
  the full randomisation (``layers: [12]``), every step from the waveform; the time of one sweep is
  multiplied out to the default (13 steps + the full one + the trained sweep, per clip). Started
  from the cached prefix the check costs less: ``bench/randomisation_speed.py``.
- Bootstrap: a synthetic [1,440 clips, 46,848 units] matrix (13 x 768 hidden, 12 x 3,072 ffn) with
  the full selection, ``--resamples`` resamples, multiplied out to 200 (the default) and 1,000.

    python bench/reliability_cost.py --out bench/results/reliability-cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons.unit_arrays import write_unit_arrays  # noqa: E402
from speechneurons.cache import ActivationMatrix  # noqa: E402
from speechneurons.datasets.ravdess import SPEC  # noqa: E402
from speechneurons.reliability.agreement import CurveSource, agreement  # noqa: E402
from speechneurons.reliability.bootstrap import BootstrapSettings, speaker_bootstrap  # noqa: E402
from speechneurons.combination import Combination  # noqa: E402

CLIP = "Actor_01/03-01-01-01-01-01-01.wav"
FULL_CLIPS, FULL_PAIRS, UNITS_SELECTED = 1440, 24, 900


def agreement_seconds(clips: int, folder: Path) -> float:
    rng = np.random.default_rng(0)
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat(np.arange(9), 100).astype("int32"),
                          "neuron": np.tile(np.arange(100), 9).astype("int32")})
    sources = {}
    for ms, n in ((20, 174), (100, 35)):
        ids = [f"clip{i}" for i in range(clips)]
        write_unit_arrays(folder / f"{ms}.safetensors", {c: rng.normal(size=(len(units), n)) for c in ids}, units)
        pd.DataFrame([{"clip_id": c, "segment": s, "start_s": s * ms / 1000, "end_s": min((s + 1) * ms / 1000, 3.47),
                       "level_db": 0.0, "loud": True} for c in ids for s in range(n)]
                     ).to_parquet(folder / f"{ms}.parquet")
        sources[Combination("zero", ms, "mean")] = CurveSource([folder / f"{ms}.safetensors"],
                                                               [folder / f"{ms}.parquet"])
    start = time.perf_counter()
    agreement(sources)
    return (time.perf_counter() - start) / clips


def bootstrap_seconds(resamples: int) -> float:
    from bootstrap_speed import full_size_data

    meta, units, x, selected = full_size_data()
    matrix = ActivationMatrix(meta["clip_id"].tolist(), units, x)
    start = time.perf_counter()
    speaker_bootstrap(matrix, meta, selected, SPEC, BootstrapSettings(resamples=resamples, top_k=4),
                      progress=False)
    return (time.perf_counter() - start) / resamples


def model_checks(folder: Path) -> dict:
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    from speechneurons.ablation.engine import ResolvedUnits
    from speechneurons.models import load_speech_model
    from speechneurons.reliability.deletion import DeletionSettings, deletion_check
    from speechneurons.reliability.randomisation import RandomisationSettings, randomisation_check

    torch.manual_seed(0)
    torch.set_num_threads(2)
    WavLMModel(WavLMConfig()).save_pretrained(folder / "wavlm-base")
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder / "wavlm-base")
    model = load_speech_model(str(folder / "wavlm-base"))
    layers = [("hidden", k) for k in (0, 3, 6, 9, 12)] + [("ffn", k) for k in (2, 8, 12)]
    units = ResolvedUnits.from_table(pd.DataFrame([{"site": s, "layer": k, "neuron": 7} for s, k in layers]), model)
    clips = pd.DataFrame({"clip_id": ["03-01-01-01-01-01-01"], "path": [CLIP]})
    root = REPO / "data/ravdess-mini"
    start = time.perf_counter()
    deletion_check(model, clips, root, units, [Combination("zero", 20, "mean")], DeletionSettings(), progress=False)
    deletion = time.perf_counter() - start
    start = time.perf_counter()
    randomisation_check(model, clips, root, units, Combination("zero", 20, "mean"),
                        RandomisationSettings(layers=(12,)), progress=False, reuse_prefix=False)
    sweep = (time.perf_counter() - start) / 3  # trained, layer 12, everything: full sweeps each
    return {"deletion_s_per_clip_combination": deletion, "randomisation_sweep_s": sweep,
            "units": len(units), "segments": 174}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agreement-clips", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        per_clip_pair = agreement_seconds(args.agreement_clips, Path(tmp))
        per_resample = bootstrap_seconds(args.resamples)
        models = model_checks(Path(tmp))
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "agreement_s_per_clip_pair": per_clip_pair,
        "agreement_full_s": per_clip_pair * FULL_CLIPS * FULL_PAIRS,
        "bootstrap_s_per_resample": per_resample,
        "bootstrap_200_s": per_resample * 200, "bootstrap_1000_s": per_resample * 1000,
        **models,
        # defaults: 4 clips x 12 combinations; 2 clips x (trained + 12 layers + everything)
        "deletion_default_full_config_s": models["deletion_s_per_clip_combination"] * 4 * 12,
        "randomisation_default_s": models["randomisation_sweep_s"] * 2 * 14,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
