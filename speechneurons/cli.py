"""The quick look without Snakemake: one command, one clip, one neuron, one picture.

The seed guide's Quick Start, on the workflow's engine::

    speechneurons analyze --ravdess-path P --emotion happy --layer 8 --neuron 256
    speechneurons analyze --ravdess-path P --compare --layer 6 --neuron 384

``--layer`` counts transformer layers from 0 as the seed did
(``encoder.layers[L]``): its output is hidden layer L + 1 in the workflow's
numbering, which ``--hidden-layer`` takes directly. Writes one figure (PNG)
and one parquet table (the per-segment attributions with the clip's
metadata) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from speechneurons.datasets.ravdess import EMOTIONS, IndexFilters, NoValidClipsError, build_index

DEFAULT_MODEL = "microsoft/wavlm-base-plus"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechneurons", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="ablate one unit on one clip (or one per emotion)",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    analyze.add_argument("--ravdess-path", "--ravdess_path", dest="ravdess_path", required=True,
                         help="folder holding Actor_01/ ... Actor_24/")
    analyze.add_argument("--emotion", choices=list(EMOTIONS.values()), default="happy")
    where = analyze.add_mutually_exclusive_group()
    where.add_argument("--layer", type=int, help="the seed's layer index (encoder.layers[L], 0-based)")
    where.add_argument("--hidden-layer", type=int, help="hidden layer k (0 = transformer input)")
    analyze.add_argument("--neuron", type=int, default=256)
    analyze.add_argument("--site", choices=["hidden", "ffn"], default="hidden")
    analyze.add_argument("--gender", choices=["male", "female"])
    analyze.add_argument("--intensity", choices=["normal", "strong"])
    analyze.add_argument("--seed", type=int, default=0, help="which clip is drawn")
    analyze.add_argument("--model", default=DEFAULT_MODEL, help="hub name or local folder")
    analyze.add_argument("--revision", default=None)
    analyze.add_argument("--baseline", default="zero", help="zero, mean, noise-snrD, lowpass-F, fn-module.function")
    analyze.add_argument("--segment-ms", type=int, default=20)
    analyze.add_argument("--reduction", default="mean", help="mean, max, frame-N, time-S")
    analyze.add_argument("--compare", action="store_true", help="one clip per emotion, side by side")
    analyze.add_argument("--emotions", nargs="+", choices=list(EMOTIONS.values()),
                         help="with --compare: which emotions (default: all found)")
    analyze.add_argument("--device", default="auto")
    analyze.add_argument("--perturbations-per-eval", type=int, default=16)
    analyze.add_argument("--out", default="results/quicklook", help="output folder")
    return parser


def draw_clips(clips: pd.DataFrame, emotions: Sequence[str], seed: int) -> pd.DataFrame:
    """One clip per emotion, drawn with ``seed`` (the seed guide's get_random_sample)."""
    rng = np.random.default_rng(seed)
    picked = []
    for emotion in emotions:
        pool = clips[clips["emotion"] == emotion].sort_values("clip_id")
        if len(pool):
            picked.append(pool.iloc[int(rng.integers(len(pool)))])
    return pd.DataFrame(picked).reset_index(drop=True)


def analyze(args: argparse.Namespace) -> tuple[Path, Path]:
    """Run the quick look; returns (figure, table) paths."""
    import torch

    from speechneurons.ablation.baselines import make_baseline
    from speechneurons.ablation.engine import ResolvedUnits, ablate_clip
    from speechneurons.ablation.segments import make_segments
    from speechneurons.audio import load_waveform
    from speechneurons.figures import plot_clip_attribution, plot_emotion_panels, save_figure, unit_label
    from speechneurons.models import load_speech_model

    emotions = (args.emotions or list(EMOTIONS.values())) if args.compare else [args.emotion]
    filters = IndexFilters(emotions=emotions, gender=[args.gender] if args.gender else None,
                           intensity=[args.intensity] if args.intensity else None)
    index = build_index(args.ravdess_path, filters)
    chosen = draw_clips(index.clips, emotions, args.seed)
    layer = args.hidden_layer if args.hidden_layer is not None else (8 if args.layer is None else args.layer) + 1
    print(f"{len(index.clips)} matching clips; ablating {args.site} layer {layer}"
          + (f" (the seed's --layer {args.layer})" if args.layer is not None else "")
          + f", neuron {args.neuron} on {len(chosen)} clip(s)", file=sys.stderr)
    model = load_speech_model(args.model, args.revision, args.device)
    unit = pd.DataFrame({"site": [args.site], "layer": [layer], "neuron": [args.neuron]})
    units = ResolvedUnits.from_table(unit, model, "--layer/--neuron")
    rows, panels, waves = [], [], {}
    for clip in chosen.itertuples(index=False):
        wave = load_waveform(Path(args.ravdess_path) / clip.path, model.sample_rate)
        x = torch.from_numpy(wave)
        segments = make_segments(len(wave), args.segment_ms, model.sample_rate, model.hop_samples)
        baseline = make_baseline(args.baseline, x, model.sample_rate, args.seed, clip.clip_id)
        result = ablate_clip(model, x, segments, units, baseline=baseline, reduction=args.reduction,
                             perturbations_per_eval=args.perturbations_per_eval, show_progress=True)
        curve = pd.DataFrame({
            "clip_id": clip.clip_id, "emotion": clip.emotion, "intensity": clip.intensity,
            "gender": clip.gender, "actor": clip.actor, "site": args.site, "layer": layer,
            "neuron": args.neuron, "segment": np.arange(len(segments)), "start_s": segments.start_s,
            "end_s": segments.end_s, "attribution": result.attributions[0].numpy(),
            "original": float(result.original[0]),
        })
        rows.append(curve)
        waves[clip.clip_id] = wave
        panels.append((f"{clip.emotion}: {clip.clip_id} ({clip.intensity}, {clip.gender})", wave, curve))
    table = pd.concat(rows, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = unit_label(args.site, layer, args.neuron)
    stem = (f"compare_{args.site}{layer}_n{args.neuron}" if args.compare
            else f"{args.emotion}_{args.site}{layer}_n{args.neuron}_{chosen.clip_id[0]}")
    if args.compare:
        figure = plot_emotion_panels(panels, model.sample_rate, f"{label}: one clip per emotion")
    else:
        figure = plot_clip_attribution(waves[chosen.clip_id[0]], model.sample_rate,
                                       {label: rows[0]}, panels[0][0])
    png = out / f"{stem}.png"
    save_figure(figure, png)
    table.to_parquet(out / f"{stem}.parquet", index=False)
    return png, out / f"{stem}.parquet"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        figure, table = analyze(args)
    except (NoValidClipsError, FileNotFoundError) as err:
        print(f"speechneurons analyze: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # bad layer, neuron, baseline, reduction: the message names it
        print(f"speechneurons analyze: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # ModelLoadError: names the model and whether the hub was offline
        print(f"speechneurons analyze: error: {err}", file=sys.stderr)
        return 2
    print(f"figure: {figure}\ntable:  {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
