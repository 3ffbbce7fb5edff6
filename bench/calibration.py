"""Calibration of every test the workflow prints, under realistic nulls and a planted effect.

Runs the checks of :mod:`speechneurons.calibration` on RAVDESS-shaped data
(24 actors x 60 clips) and writes ``bench/results/calibration.json``: for
every p the rate at 0.05 and 0.001 with its SE, the share of complete-null
runs with any BH discovery, the coverage of intervals, the knock-out's
selected-vs-random difference under the null, and power for a planted
effect beside the tests this issue replaced (the code of commit
``REFERENCE``, read with ``git show``). BLAS threads are pinned to one.

    python bench/calibration.py            # the full table (11 minutes here)
    python bench/calibration.py --quick    # a smaller run, to try it
    python bench/calibration.py --only prosody   # rerun one check into the existing JSON
    python bench/calibration.py --only power     # issue 36: power, new against replaced test
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechneurons import calibration as cal  # noqa: E402
from speechneurons.datasets.ravdess import SPEC  # noqa: E402
from speechneurons.stats.fdr import bh  # noqa: E402
from speechneurons.stats.selectivity import speaker_rows  # noqa: E402

#: the last commit with the speaker-general tests of issue 9 (Huynh-Feldt F, relabelled cells)
REFERENCE = "efaa88c"
#: the last commit with Hotelling's T^2 on the speakers' level contrasts (replaced in issue 36)
HOTELLING_REFERENCE = "e7f207e"


def reference_module(commit: str = REFERENCE) -> types.ModuleType:
    """``speechneurons/stats/repeated.py`` as it was at ``commit``."""
    source = subprocess.run(["git", "show", f"{commit}:speechneurons/stats/repeated.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"repeated_at_{commit}")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, "repeated_at_reference.py", "exec"), module.__dict__)
    return module


def reference_p():
    """The p of issue 9's emotion test (Huynh-Feldt F) as a function of (meta, x, factor)."""
    old = reference_module()

    def p_speaker(meta, x, factor="emotion"):
        rows, _ = speaker_rows(meta, SPEC, factor)
        return old.blocked_f(rows.values(x), rows, sphericity=True).p

    return p_speaker


def hotelling_selective(permutations: int):
    """``selective`` of the emotion test at HOTELLING_REFERENCE (T^2, its q and p_perm below 0.05)
    as a function of (meta, x)."""
    old = reference_module(HOTELLING_REFERENCE)

    def selective(meta, x):
        rows, _ = speaker_rows(meta, SPEC, "emotion")
        result = old.within_speaker_test(rows.values(x), rows, permutations, 0)
        return (bh(result.p) < 0.05) & (result.p_perm < 0.05)

    return selective


def power_checks(seconds: dict, quick: bool) -> dict:
    """Issue 36's table: selective on planted data (2 % of units, slopes 0.3), the new test beside
    Hotelling's T^2; the cross-fitted selection's naming and level assignment; null rates at 0.05,
    0.01 and 0.001 and complete-null runs with any selective unit under every null."""
    units, runs = (500, 2) if quick else (1000, 4)
    planted = units // 50
    old = hotelling_selective(999)
    out: dict = {"units": units, "runs": runs, "selective": {}, "cross_fit": {}, "null": {}}

    def timed(name, function, *a, **k):
        start = time.perf_counter()
        value = function(*a, **k)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
        return value

    for name, plant in [("angry +0.3", {"units": planted, "level": "angry", "size": 0.3}),
                        ("angry +0.5", {"units": planted, "level": "angry", "size": 0.5}),
                        ("angry +0.8", {"units": planted, "level": "angry", "size": 0.8}),
                        ("arousal +-0.3", {"units": planted, "pattern": cal.AROUSAL})]:
        out["selective"][name] = timed(f"power {name}", cal.planted_power, plant, units, runs, 999,
                                       seed=5, reference=old)
    for size in (0.5, 0.8):
        out["cross_fit"][f"angry +{size}"] = timed(f"cross_fit +{size}", cal.cross_fit_power,
                                                   {"units": planted, "level": "angry", "size": size},
                                                   units, runs, 999, seed=9)
    for kind in cal.NULLS:
        out["null"][kind] = timed(f"null {kind}", cal.selectivity_null, kind, units, runs * 15, 999, seed=13)
    return out


def power_markdown(power: dict) -> str:
    """The tables of docs/calibration.md for issue 36."""
    lines = [f"Planted: {power['units'] // 50} of {power['units']} units in every one of 24 actors (speaker "
             f"intercepts, speaker x factor slopes SD 0.3), {power['runs']} runs each, 999 first flips.", "",
             "| planted effect (clip-noise SD) | selective: repeated-measures F, sign flips with the tail | "
             "false share | replaced: Hotelling T^2 | false share |", "| --- | --- | --- | --- | --- |"]
    for name, row in power["selective"].items():
        lines.append(f"| {name} | {row['power']:.3f} | {row['false_discovery_share']:.3f} | "
                     f"{row['replaced']['power']:.3f} | {row['replaced']['false_discovery_share']:.3f} |")
    lines += ["", "| cross-fitted selection (4 folds, 18 training actors) | planted units named in some fold | "
              "rows naming a null unit | rows at another level (null share) | planted rows replicated held out |",
              "| --- | --- | --- | --- | --- |"]
    for name, row in power["cross_fit"].items():
        other = row["null_share_of_rows_at_another_level"]
        lines.append(f"| {name} | {row['named_in_some_fold']:.3f} | {row['rows_naming_a_null_unit']:.3f} "
                     f"({row['rows']} rows) | {row['rows_at_another_level']} "
                     f"({'-' if other != other else f'{other:.2f}'}) | {row['planted_rows_replicated_held_out']:.3f} |")
    lines += ["", "| null | emotion p_perm at 0.05 / 0.01 / 0.001 | p_speaker (GG) at 0.05 / 0.001 | "
              "runs with any selective unit (emotion; four factors pooled) |", "| --- | --- | --- | --- |"]
    for kind, factors in power["null"].items():
        e = factors["emotion"]
        pooled = [row["any_selective"] for row in factors.values()]
        share = sum(r["share"] * r["runs"] for r in pooled) / sum(r["runs"] for r in pooled)
        lines.append(f"| {kind} | {e['p_perm']['0.05']['rate']:.4f} / {e['p_perm']['0.01']['rate']:.4f} / "
                     f"{e['p_perm']['0.001']['rate']:.4f} (n {e['p_perm']['0.05']['n']}) | "
                     f"{e['p_speaker']['0.05']['rate']:.4f} / {e['p_speaker']['0.001']['rate']:.4f} | "
                     f"{e['any_selective']['share']:.2f}; {share:.3f} |")
    return "\n".join(lines) + "\n"


def _r(value: dict) -> str:
    return f"{value['rate']:.4f} ({value['se']:.4f})"


def _s(value: dict) -> str:
    return f"{value['share']:.2f} ({value['se']:.2f}, {value['runs']} runs)"


def markdown(result: dict) -> str:
    """The calibration table of docs/calibration.md from the JSON."""
    lines = ["| table: test | null | rate at 0.05 (SE) | rate at 0.001 (SE) | the replaced test at 0.05 / 0.001 |",
             "| --- | --- | --- | --- | --- |"]
    for kind, factors in result["selectivity_tail"].items():
        for factor, column in [("emotion", "p_speaker"), ("emotion", "p_perm"), ("gender", "p_speaker"),
                               ("intensity", "p_speaker")]:
            row = factors[factor][column]
            old = factors[factor].get("replaced_test_p") if column == "p_speaker" else None
            lines.append(f"| selectivity: {factor} {column} | {kind} | {_r(row['0.05'])} | {_r(row['0.001'])} | "
                         + (f"{old['0.05']['rate']:.4f} / {old['0.001']['rate']:.4f}" if old else "") + " |")
    units = result["sizes"]["units"] * result["sizes"]["runs"]
    lines.append("")
    lines.append(f"Selectivity rows: {units:,} null units per null ({result['sizes']['runs']} runs), "
                 f"{result['sizes']['perms']} permutations (a permutation p of 1/1,000 counts at 0.001).")
    lines.append("")
    lines.append("| complete nulls of 1,000 units | null | runs with any q_speaker < 0.05 | runs with any selective unit |")
    lines.append("| --- | --- | --- | --- |")
    for kind, factors in result["selectivity_discoveries"].items():
        for factor, row in factors.items():
            lines.append(f"| selectivity: {factor} | {kind} | {_s(row['any_q_below_05'])} | {_s(row['any_selective'])} |")
        pooled = [row["any_selective"] for row in factors.values()]
        runs = sum(r["runs"] for r in pooled)
        share = sum(r["share"] * r["runs"] for r in pooled) / runs
        lines.append(f"| selectivity: the four factors pooled | {kind} | | {share:.3f} "
                     f"({np.sqrt(0.05 * 0.95 / runs):.3f}, {runs} runs) |")
    power = result["selectivity_power"]
    planted = power["planted"]
    lines += ["", f"Power: {planted['units']} of {planted['of']} units +{planted['size']} clip-noise SD on "
              f"{planted['level']} in every speaker ({planted['null']}): selective in {power['power']:.2f} of them "
              f"(false discoveries {power['false_discovery_share']:.2f} of those called); Hotelling's T^2, which "
              f"it replaced, {power['replaced']['power']:.2f} (false discoveries "
              f"{power['replaced']['false_discovery_share']:.2f}).",
              "", "| table: test | null | rate at 0.05 (SE) | rate at 0.001 (SE) | the replaced test at 0.05 / 0.001 |",
              "| --- | --- | --- | --- | --- |"]
    for kind, row in result["selected_units"].items():
        q2, old = row["question_2"]["attribution_p"], row["question_2"]["replaced_test_p"]
        lines.append(f"| target_encoding: attribution_p (cross-fitted, paired) | {kind} | {_r(q2['0.05'])} | "
                     f"{_r(q2['0.001'])} | {old['0.05']['rate']:.4f} / {old['0.001']['rate']:.4f} (chosen on every "
                     "speaker, Welch on speaker means) |")
    ko = result["knockout"]
    lines.append(f"| knockout: p of specificity_difference | slopes_0.3 | {_r(ko['p']['0.05'])} | {_r(ko['p']['0.001'])} | |")
    q4 = result["question_4"]
    lines.append(f"| group_contrasts: attribution_p (Welch), 6 vs 12 speakers, unequal SD | speaker groups | "
                 f"{_r(q4['welch_p']['0.05'])} | {_r(q4['welch_p']['0.001'])} | "
                 f"{q4['replaced_student_p']['0.05']['rate']:.4f} / {q4['replaced_student_p']['0.001']['rate']:.4f} (Student) |")
    q3 = result["question_3"]
    lines.append(f"| loudness: p (speaker and clip noise on the loud share; the 4 levels of a run share its speakers, so about {q3['bands'] // 80} independent runs) | speaker effects | {_r(q3['loudness_p']['0.05'])} | "
                 f"{_r(q3['loudness_p']['0.001'])} | |")
    q5 = result["question_5"]["p"]
    lines.append(f"| graded_effects: p | slopes_0.6 | {_r(q5['0.05'])} | {_r(q5['0.001'])} | |")
    for factor in ("emotion", "gender"):
        new = result["probes"]["slopes_0.6"][factor]
        old = result["probes"]["slopes_0.6_clip_shuffle_null"][factor]
        lines.append(f"| probes: p_perm <= 1/20 ({factor}, {new['layers']} null layers) | slopes_0.6 | "
                     f"{_r(new['p_perm_at_most_05'])} | | " + (f"{old['p_perm_at_most_05']['rate']:.4f} (clips shuffled "
                     "within speakers)" if factor == "emotion" else "") + " |")
    lines.append("")
    cover = [f"{kind} {row['bootstrap']['interval_covers_0']:.3f} (SE {row['bootstrap']['se']:.3f}, "
             f"{row['bootstrap']['n']} intervals)" for kind, row in result["selected_units"].items()]
    lines.append("Held-out 95 % interval of a cross-fitted unit's level contrast (bootstrap_units), covering the "
                 "true 0 of null units: " + "; ".join(cover) + ".")
    lines.append(f"Temporal profiles: the 95 % band over speakers covers the true share of 1/20 in "
                 f"{q3['band_covers_true_share']:.3f} of {q3['bands']} (level, bin) bands (SE {q3['se']:.3f}; "
                 "speaker-specific shapes over time).")
    if "question_3_prosody" in result:
        null, power = result["question_3_prosody"]["null"], result["question_3_prosody"]["power"]
        size = result["question_3_prosody"]["sizes"]
        lines.append(f"Prosody (prosody_units): under the null of {size['null_runs']} runs x {size['units']} units x 6 "
                     "measures (speaker intercepts and speaker x measure slopes SD 0.3, 4-14 clips per speaker, "
                     "AR(1) noise growing with loudness, F0 and intensity correlated 0.5) p is at or below 0.05 in "
                     f"{_r(null['p']['0.05'])} and 0.001 in {_r(null['p']['0.001'])} of the tests, partial_p in "
                     f"{_r(null['partial_p']['0.05'])} and {_r(null['partial_p']['0.001'])}; "
                     f"(run, measure) families with any q < 0.05: {_s(null['families_with_any_q_below_05'])}. "
                     f"A planted F0 slope of {size['planted_size']} (in noise SD, every speaker) is found "
                     f"(q < 0.05) in {_s(power['planted_found_f0'])}, with intensity held fixed in "
                     f"{_s(power['planted_found_f0_partial'])}; its intensity test in "
                     f"{_s(power['planted_found_intensity'])}.")
    lines.append(f"Knock-out under the null, selected minus matched random units (specificity_difference): "
                 f"{ko['specificity_difference_mean']:+.4f} (SE {ko['se']:.4f}, {ko['runs']} runs).")
    for factor in ("emotion", "gender"):
        lines.append(f"Probe null mean minus chance ({factor}): "
                     f"{result['probes']['slopes_0.6'][factor]['null_mean_minus_chance']:+.4f}.")
    return "\n".join(lines) + "\n"


def prosody_checks(seconds: dict, quick: bool) -> dict:
    """The prosody test's null (many runs of 20 units) and its power for a planted F0 slope."""
    sizes = {"null_runs": 20 if quick else 200, "units": 20, "power_runs": 5 if quick else 25, "planted": 4,
             "planted_size": 0.4}
    start = time.perf_counter()
    null = cal.prosody_null(sizes["null_runs"], sizes["units"], seed=101)
    power = cal.prosody_null(sizes["power_runs"], sizes["units"], planted=sizes["planted"],
                             size=sizes["planted_size"], seed=202)
    seconds["question_3_prosody"] = round(time.perf_counter() - start, 1)
    print(f"question_3_prosody: {seconds['question_3_prosody']} s", file=sys.stderr, flush=True)
    return {"sizes": sizes, "null": null, "power": power}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and units")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/calibration.json")
    parser.add_argument("--table", type=Path, default=None, help="only print the table of this JSON")
    parser.add_argument("--only", choices=["prosody", "power"], default=None,
                        help="run this check alone and merge it into the JSON at --out")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    if args.only == "power":
        result = json.loads(args.out.read_text()) if args.out.exists() else {}
        with threadpool_limits(1):
            result["power_issue_36"] = power_checks(result.setdefault("seconds", {}), args.quick)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        table = power_markdown(result["power_issue_36"])
        args.out.with_name("calibration-power.md").write_text(table)
        print(table)
        return
    if args.only == "prosody":
        result = json.loads(args.out.read_text())
        with threadpool_limits(1):
            result["question_3_prosody"] = prosody_checks(result.setdefault("seconds", {}), args.quick)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return
    size = (dict(units=500, runs=4, null_runs=10, perms=999, probe_layers=10, pipeline_runs=4)
            if args.quick else
            dict(units=4000, runs=3, null_runs=200, perms=999, probe_layers=40, pipeline_runs=20))
    p_reference = reference_p()
    result: dict = {"reference_commit": REFERENCE, "sizes": size, "seconds": {}}

    def timed(name, function, *a, **k):
        start = time.perf_counter()
        value = function(*a, **k)
        result["seconds"][name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {result['seconds'][name]} s", file=sys.stderr, flush=True)
        return value

    with threadpool_limits(1):
        # rates in the tail: many units per run
        result["selectivity_tail"] = {kind: timed(f"selectivity_tail {kind}", cal.selectivity_null, kind,
                                                  size["units"], size["runs"], size["perms"],
                                                  reference=p_reference)
                                      for kind in cal.NULLS}
        # complete-null runs with any BH discovery: many runs of 1,000 units
        result["selectivity_discoveries"] = {
            kind: timed(f"selectivity_discoveries {kind}", cal.selectivity_null, kind, 1000,
                        size["null_runs"] // 2, size["perms"], seed=77)
            for kind in ("slopes_0.3", "heteroscedastic")}
        result["selectivity_power"] = timed("selectivity_power", cal.planted_power,
                                            {"units": 50, "level": "angry", "size": 0.5}, 1000, size["runs"],
                                            size["perms"], reference=hotelling_selective(size["perms"]))
        result["selected_units"] = {kind: timed(f"selected_units {kind}", cal.selected_units_null, kind, 200,
                                                size["pipeline_runs"])
                                    for kind in ("slopes_0.3", "heteroscedastic")}
        result["knockout"] = timed("knockout", cal.knockout_null, "slopes_0.3", 16, size["pipeline_runs"])
        result["question_3"] = timed("question_3", cal.temporal_null, 3 * size["pipeline_runs"])
        result["question_3_prosody"] = prosody_checks(result["seconds"], args.quick)
        result["question_4"] = timed("question_4", cal.group_contrast_null, size["pipeline_runs"], 200)
        result["question_5"] = timed("question_5", cal.graded_null, "slopes_0.6", size["pipeline_runs"] // 2, 200)
        result["probes"] = {
            "slopes_0.6": timed("probes", cal.probe_null, "slopes_0.6", size["probe_layers"], 16, 19),
            "slopes_0.6_clip_shuffle_null": timed("probes (replaced null)", cal.probe_null, "slopes_0.6",
                                                  size["probe_layers"], 16, 19,
                                                  relabel=cal.clip_shuffle_relabel)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    np.seterr(all="ignore")
    logging.disable(logging.WARNING)  # the per-run notes (q_perm floors, speakers left out)
    main()
