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


def reference_module() -> types.ModuleType:
    """``speechneurons/stats/repeated.py`` as it was at REFERENCE."""
    source = subprocess.run(["git", "show", f"{REFERENCE}:speechneurons/stats/repeated.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("repeated_at_reference")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, "repeated_at_reference.py", "exec"), module.__dict__)
    return module


def reference_tests(permutations: int):
    """(p of the replaced emotion test, selective of the replaced test) as functions of (meta, x)."""
    old = reference_module()

    def p_speaker(meta, x, factor="emotion"):
        rows, _ = speaker_rows(meta, SPEC, factor)
        return old.blocked_f(rows.values(x), rows, sphericity=True).p

    def selective(meta, x):
        rows, _ = speaker_rows(meta, SPEC, "emotion")
        values = rows.values(x)
        p = old.blocked_f(values, rows, sphericity=True).p
        p_perm = old.permutation_pvalues(values, rows, permutations, 0)
        return (bh(p) < 0.05) & (p_perm < 0.05)

    return p_speaker, selective


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
    for factor, row in result["replication"].items():
        lines.append(f"| replication: {factor} (any unit replicated) | slopes_0.3 | {_s(row)} | |")
    power = result["selectivity_power"]
    planted = power["planted"]
    lines += ["", f"Power: {planted['units']} of {planted['of']} units +{planted['size_in_noise_sd']} clip-noise SD on "
              f"{planted['level']} in every speaker ({planted['null']}): selective in {power['power']:.2f} of them "
              f"(false discoveries {power['false_discovery_share']:.2f} of those called); the replaced test "
              f"{power['replaced_test_power']:.2f} (false discoveries {power['replaced_test_false_discovery_share']:.2f}).",
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
    parser.add_argument("--only", choices=["prosody"], default=None,
                        help="run this check alone and merge it into the JSON at --out")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
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
    p_reference, selective_reference = reference_tests(size["perms"])
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
        result["selectivity_power"] = timed("selectivity_power", cal.selectivity_power, 1000, 50, 0.5,
                                            size["runs"], size["perms"], reference=selective_reference)
        result["replication"] = timed("replication", cal.replication_null, "slopes_0.3", 1000,
                                      size["null_runs"] // 10, 199)
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
