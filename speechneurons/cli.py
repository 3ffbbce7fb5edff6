"""The quick look without Snakemake: one command, one clip, one neuron, one picture.

The original guide's Quick Start, on the workflow's engine (any corpus; the
bundled one by default; docs/quick-look.md shows the original guide's own two commands)::

    speechneurons analyze --ravdess-path P --<target factor> LEVEL --layer 8 --neuron 256
    speechneurons analyze --corpus emodb --root P --compare --layer 6 --neuron 384

Every factor of the corpus is a flag that keeps clips of one level (for
the corpus above: see ``--corpus NAME --help``); ``--<corpus>-path`` is
``--root``. ``--layer`` counts transformer layers from 0 as the original guide did
(``encoder.layers[L]``): its output is hidden layer L + 1 in the
workflow's numbering, which ``--hidden-layer`` takes directly. Writes one
figure (PNG) and one parquet table (the per-segment attributions with the
clip's metadata) to ``--out``. Without the Hugging Face hub, ``--model``
takes a folder, such as the demo's ``results/models/tiny-wavlm`` (random
weights: it shows the machinery, not speech). Errors name the flag typed,
and those about the folder and the flags come before torch is imported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

import speechneurons
from speechneurons.config import hop_ms
from speechneurons.datasets import available, load_corpus
from speechneurons.datasets.index import IndexFilters, NoValidClipsError, build_index
from speechneurons.datasets.spec import SPEAKER, CorpusSpec

#: the corpus of the original guide's commands, when --corpus is not given
DEFAULT_CORPUS = "ravdess"
DEFAULT_MODEL = "microsoft/wavlm-base-plus"


#: the frame hop of every model family here (20 ms): segments are whole frames
HOP_MS = int(hop_ms(None))
#: corpora the quick look cannot open from flags alone
NEEDS_A_CONFIG = {"manifest": ("the manifest corpus takes its design (columns, factors, levels) from "
                               "a config: copy config/manifest.yaml, edit it and run the workflow "
                               "(snakemake --configfile my-corpus.yaml)")}


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and every flag's default (where it has one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        shown = action.help or ""
        if not any(action.default is none for none in (None, False, argparse.SUPPRESS)) and action.option_strings:
            shown += " (default: %(default)s)"
        return shown


def non_negative(flag: str):
    """An argparse type: an integer of 0 or more, refused in ``flag``'s words."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{value} is negative: {flag} counts from 0")
        return value
    return parse


def segment_length(text: str) -> int:
    """An argparse type: a positive multiple of the models' 20 ms frame hop."""
    value = non_negative("--segment-ms")(text)
    if value == 0 or value % HOP_MS:
        raise argparse.ArgumentTypeError(f"{value} ms is not a positive multiple of the models' "
                                         f"{HOP_MS} ms frame hop, e.g. {max(HOP_MS, round(value / HOP_MS) * HOP_MS)}")
    return value


def build_parser(spec: CorpusSpec) -> argparse.ArgumentParser:
    """The parser for ``spec``'s corpus: a flag per factor, choices from its levels."""
    parser = argparse.ArgumentParser(prog="speechneurons", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"speechneurons {speechneurons.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan", help="forward passes and CPU / GPU hours of a config, per stage, before it runs",
                        add_help=False)
    analyze = commands.add_parser("analyze", help="ablate one unit on one clip (or one per target level)",
                                  description=__doc__, formatter_class=_HelpFormatter)
    analyze.add_argument("--corpus", default=DEFAULT_CORPUS, choices=available(),
                         help="which corpus the folder holds")
    analyze.add_argument("--root", f"--{spec.name}-path", f"--{spec.name}_path", dest="root",
                         required=True, help="the corpus folder, in its own layout")
    for factor in spec.factors:
        analyze.add_argument(f"--{factor.name}", choices=[str(v) for v in factor.levels],
                             help=f"keep clips of this {factor.name} ({factor.varies} speakers)")
    levels = [f"--{alias}" for alias, column in spec.filter_aliases.items() if column == spec.target]
    analyze.add_argument("--levels", *levels, dest="levels", nargs="+",
                         choices=[str(v) for v in spec.levels(spec.target)],
                         help=f"with --compare: which {spec.target} levels (default: all found)")
    where = analyze.add_mutually_exclusive_group()
    where.add_argument("--layer", type=non_negative("--layer"),
                       help="the original guide's layer index (encoder.layers[L], 0-based); 8 when neither is given")
    where.add_argument("--hidden-layer", type=non_negative("--hidden-layer"),
                       help="hidden layer k (0 = transformer input)")
    analyze.add_argument("--neuron", type=non_negative("--neuron"), default=256, help="the unit's index")
    analyze.add_argument("--site", choices=["hidden", "ffn"], default="hidden",
                         help="hidden: a layer's output; ffn: a feed-forward unit")
    analyze.add_argument("--seed", type=int, default=0, help="which clip is drawn")
    analyze.add_argument("--model", default=DEFAULT_MODEL,
                         help="hub name or local folder (without the hub: results/models/tiny-wavlm after make demo)")
    analyze.add_argument("--revision", default=None, help="a hub commit to pin")
    analyze.add_argument("--baseline", default="zero", help="zero, mean, noise-snrD, lowpass-F, fn-module.function")
    analyze.add_argument("--segment-ms", type=segment_length, default=20, help="segment length (ms)")
    analyze.add_argument("--reduction", default="mean", help="mean, max, frame-N, time-S")
    analyze.add_argument("--compare", action="store_true",
                         help=f"one clip per {spec.target} level, side by side")
    analyze.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    analyze.add_argument("--perturbations-per-eval", type=non_negative("--perturbations-per-eval"), default=16,
                         help="ablated copies per forward pass")
    analyze.add_argument("--out", default="results/quicklook", help="output folder")
    return parser


def draw_clips(clips: pd.DataFrame, column: str, levels: Sequence, seed: int) -> pd.DataFrame:
    """One clip per level of ``column``, drawn with ``seed`` (the original guide's get_random_sample)."""
    rng = np.random.default_rng(seed)
    picked = []
    for level in levels:
        pool = clips[clips[column] == level].sort_values("clip_id")
        if len(pool):
            picked.append(pool.iloc[int(rng.integers(len(pool)))])
    return pd.DataFrame(picked).reset_index(drop=True)


def _level(spec: CorpusSpec, factor: str, text: str):
    """The declared level whose text is ``text`` (levels may be numbers)."""
    return {str(v): v for v in spec.levels(factor)}[text]


def analyze(args: argparse.Namespace) -> tuple[Path, Path]:
    """Run the quick look; returns (figure, table) paths. Raises :class:`UsageError` in the flags'
    words for what the folder and the flags get wrong, before torch is imported."""
    corpus = load_corpus(args.corpus)
    spec = corpus.spec
    target = spec.target
    chosen_level = getattr(args, target)
    if args.compare:
        levels = [_level(spec, target, v) for v in args.levels] if args.levels else spec.levels(target)
    else:
        levels = [_level(spec, target, chosen_level)] if chosen_level else spec.levels(target)
    keep = {f.name: [_level(spec, f.name, getattr(args, f.name))] for f in spec.factors
            if getattr(args, f.name) is not None and f.name != target}
    root_flag = f"--{spec.name}-path"
    if not Path(args.root).is_dir():
        raise UsageError(f"{root_flag}: {args.root} is not a folder")
    try:
        index = build_index(corpus, args.root, IndexFilters.from_config({**keep, target: levels}, spec))
    except NoValidClipsError as err:
        flags = " ".join(f"--{f} {getattr(args, f)}" for f in spec.factor_names if getattr(args, f) is not None)
        raise UsageError(str(err).replace(f"dataset.root {args.root}", f"{root_flag} {args.root}").replace(
            "dataset.filters", f"the flags ({flags or 'none'})")) from None
    chosen = draw_clips(index.clips, target, levels, args.seed)
    if chosen.empty:
        raise UsageError(f"{root_flag} {args.root}: no clip of the {target} level(s) asked")

    import torch

    from speechneurons.ablation.baselines import make_baseline
    from speechneurons.ablation.engine import ResolvedUnits, ablate_clip
    from speechneurons.ablation.segments import make_segments
    from speechneurons.audio import load_waveform
    from speechneurons.figures import (clip_caption, plot_clip_attribution, plot_clip_panels, save_figure,
                                       unit_label)
    from speechneurons.models import load_speech_model

    if not args.compare:
        chosen = chosen.sample(1, random_state=args.seed) if chosen_level is None else chosen.head(1)
    layer = args.hidden_layer if args.hidden_layer is not None else (8 if args.layer is None else args.layer) + 1
    print(f"{len(index.clips)} matching clips; ablating {args.site} layer {layer}"
          + (f" (the original guide's --layer {args.layer})" if args.layer is not None else "")
          + f", neuron {args.neuron} on {len(chosen)} clip(s)", file=sys.stderr)
    model = load_speech_model(args.model, args.revision, args.device)
    unit = pd.DataFrame({"site": [args.site], "layer": [layer], "neuron": [args.neuron]})
    units = ResolvedUnits.from_table(unit, model, "--layer/--neuron")
    rows, panels, waves = [], [], {}
    described = [SPEAKER, *spec.factor_names]
    for _, clip in chosen.iterrows():
        wave = load_waveform(Path(args.root) / clip["path"], model.sample_rate)
        x = torch.from_numpy(wave)
        segments = make_segments(len(wave), args.segment_ms, model.sample_rate, model.hop_samples)
        baseline = make_baseline(args.baseline, x, model.sample_rate, args.seed, clip["clip_id"])
        result = ablate_clip(model, x, segments, units, baseline=baseline, reduction=args.reduction,
                             perturbations_per_eval=args.perturbations_per_eval, show_progress=True)
        curve = pd.DataFrame({
            "clip_id": clip["clip_id"], **{c: clip[c] for c in described}, "site": args.site, "layer": layer,
            "neuron": args.neuron, "segment": np.arange(len(segments)), "start_s": segments.start_s,
            "end_s": segments.end_s, "attribution": result.attributions[0].numpy(),
            "original": float(result.original[0]),
        })
        rows.append(curve)
        waves[clip["clip_id"]] = wave
        panels.append((f"{clip[target]}: {clip['clip_id']} ({clip_caption(clip, spec)})", wave, curve))
    table = pd.concat(rows, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = unit_label(args.site, layer, args.neuron)
    first = chosen["clip_id"].iloc[0]
    stem = (f"compare_{args.site}{layer}_n{args.neuron}" if args.compare
            else f"{chosen[target].iloc[0]}_{args.site}{layer}_n{args.neuron}_{first}".replace("/", "_"))
    if args.compare:
        figure = plot_clip_panels(panels, model.sample_rate, f"{label}: one clip per {target}")
    else:
        figure = plot_clip_attribution(waves[first], model.sample_rate, {label: rows[0]}, panels[0][0])
    png = out / f"{stem}.png"
    save_figure(figure, png)
    table.to_parquet(out / f"{stem}.parquet", index=False, write_page_checksum=True)
    return png, out / f"{stem}.parquet"


class UsageError(ValueError):
    """A folder or flag the quick look cannot use, in the words of the flags."""


def plan_command(argv: Sequence[str]) -> int:
    """``speechneurons plan``: the cost of a config before it runs (:mod:`speechneurons.plan`)."""
    import yaml

    from speechneurons import plan

    parser = argparse.ArgumentParser(prog="speechneurons plan", description=plan.__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default="config.yaml", help="the study's config (on the schema's defaults)")
    parser.add_argument("--clips", type=int, default=None, help="clips in the study (default: counted)")
    parser.add_argument("--mean-seconds", type=float, default=None, help="their mean duration (default: measured)")
    parser.add_argument("--limit-hours", type=float, default=24.0, help="flag a stage whose one job runs longer")
    parser.add_argument("--memory-gib", type=float, default=plan.memory_gib_here(),
                        help="flag a stage that holds more (default: this machine's memory)")
    parser.add_argument("--engine-json", default=None,
                        help="the CPU per-pass cost from `python bench/ablation_speed.py --model full --out F` "
                             "run on your machine (default: measured on the developers' 2-core machine)")
    args = parser.parse_args(argv)
    try:
        if args.engine_json:
            plan.MEASURED["engine_cpu"] = plan.engine_cost(args.engine_json)
        config = plan.read_config(args.configfile, Path(__file__).resolve().parents[1])
        corpus = plan.count_clips(config, args.clips, args.mean_seconds)
        stages = plan.plan_stages(config, corpus, args.limit_hours, args.memory_gib)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as err:
        print(f"speechneurons plan: error: {err}", file=sys.stderr)
        return 2
    print(plan.format_plan(stages, corpus))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["plan"]:
        return plan_command(argv[1:])
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--corpus", default=DEFAULT_CORPUS, choices=available())
    known, _ = first.parse_known_args(argv)
    if known.corpus in NEEDS_A_CONFIG:
        print(f"speechneurons analyze: error: --corpus {known.corpus}: {NEEDS_A_CONFIG[known.corpus]}",
              file=sys.stderr)
        return 2
    args = build_parser(load_corpus(known.corpus).spec).parse_args(argv)
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
