"""A study never dies of one clip or one thin design: failures and notes, not exceptions."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from audio_files import write_tone
from speechneurons.ablation.engine import Units
from speechneurons.ablation.run import NOTHING_SELECTED, AblationSettings, ablate_clips
from speechneurons.ablation.summary import SUMMARY_SCHEMA
from speechneurons.activations import pooled_activations
from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.failures import FAILED_SCHEMA
from speechneurons.problems import combination_of, failed_clips, problems_page
from speechneurons.stats.selection import SelectionSettings, select_units
from speechneurons.stats.selectivity import SELECTIVITY_SCHEMA, StatsSettings, selectivity

GOOD = "03-01-01-01-01-01-01"
SHORT = "03-01-05-01-01-02-01"  # a valid name; 200 samples, shorter than the CNN reads


@pytest.fixture()
def root_with_a_short_clip(tmp_path, demo_root):
    root = tmp_path / "ravdess"
    (root / "Actor_01").mkdir(parents=True)
    shutil.copy(demo_root / f"Actor_01/{GOOD}.wav", root / f"Actor_01/{GOOD}.wav")
    write_tone(root / f"Actor_01/{SHORT}.wav", seconds=200 / 16_000)
    clips = pd.DataFrame({"clip_id": [SHORT, GOOD],
                          "path": [f"Actor_01/{SHORT}.wav", f"Actor_01/{GOOD}.wav"]})
    return root, clips


def test_a_clip_that_fails_in_the_activation_job_is_recorded_and_the_others_go_on(
        tiny_model, root_with_a_short_clip):
    root, clips = root_with_a_short_clip
    both = pooled_activations(tiny_model, clips, root, ("hidden",), progress=False)
    alone = pooled_activations(tiny_model, clips.iloc[1:], root, ("hidden",), progress=False)
    pd.testing.assert_frame_equal(both.pooled, alone.pooled)
    assert list(both.failed.columns) == list(FAILED_SCHEMA) and len(both.failed) == 1
    row = both.failed.iloc[0]
    assert (row.clip_id, row.path, row.stage) == (SHORT, f"Actor_01/{SHORT}.wav", "activations")
    assert row.error.startswith("RuntimeError") and "Kernel size" in row.error
    assert alone.failed.empty and list(alone.failed.columns) == list(FAILED_SCHEMA)


def test_a_clip_that_fails_in_the_ablation_job_is_recorded_and_the_others_go_on(
        tiny_model, root_with_a_short_clip):
    root, clips = root_with_a_short_clip
    settings = AblationSettings(units=Units(sites=("hidden",), layers=(1,), neurons=(0, 3)))
    both = ablate_clips(tiny_model, clips, root, settings, progress=False)
    alone = ablate_clips(tiny_model, clips.iloc[1:], root, settings, progress=False)
    assert both.curves.keys() == {GOOD}
    np.testing.assert_array_equal(both.curves[GOOD], alone.curves[GOOD])
    pd.testing.assert_frame_equal(both.summary, alone.summary)
    assert both.failed[["clip_id", "stage"]].values.tolist() == [[SHORT, "ablation"]]


def test_every_clip_of_a_job_failing_is_an_error(tiny_model, root_with_a_short_clip):
    root, clips = root_with_a_short_clip
    two_short = pd.DataFrame({"clip_id": ["a", "b"], "path": [clips.path[0]] * 2})
    with pytest.raises(RuntimeError, match="every one of the job's 2 clips failed.*Kernel size"):
        pooled_activations(tiny_model, two_short, root, ("hidden",), progress=False)
    # one clip alone is one bad clip, not a broken job
    one = pooled_activations(tiny_model, two_short.iloc[:1], root, ("hidden",), progress=False)
    assert one.pooled.empty and len(one.failed) == 1


def matrix_of(meta: pd.DataFrame, units: int = 6, seed: int = 0) -> ActivationMatrix:
    x = np.random.default_rng(seed).normal(size=(len(meta), units))
    table = pd.DataFrame({"site": "hidden", "layer": np.int32(1), "neuron": np.arange(units, dtype=np.int32)})
    return ActivationMatrix(meta["clip_id"].tolist(), table, x)


def test_one_clip_gives_empty_tables_with_reasons():
    meta = full_design(actors=[1]).iloc[:1]
    table, notes = selectivity(matrix_of(meta), meta, SPEC, StatsSettings(permutations=19))
    assert table.empty and list(table.columns) == list(SELECTIVITY_SCHEMA)
    assert "emotion: not tested, the 1 clip(s) have one level (neutral)" in notes
    assert notes[-1].startswith("selectivity: no factor has two levels")
    chosen, replication, why = select_units(matrix_of(meta), meta, table, SPEC, SelectionSettings(top_k=2))
    assert chosen.empty and replication.empty and "no units, the clips hold 1 level(s) of emotion" in why[0]


def test_one_speaker_gives_descriptive_statistics_and_says_what_is_missing():
    meta = full_design(actors=[1], emotions=["neutral", "happy"])
    table, notes = selectivity(matrix_of(meta), meta, SPEC, StatsSettings(permutations=19,
                                                                      mixed_top_units=2))
    emotion = table[table["factor"] == "emotion"]
    assert emotion["F"].notna().all() and emotion["F_speaker"].isna().all()
    assert not emotion["selective"].any()
    assert emotion["mixed_model"].tolist() == ["not fitted"] * 2 + [""] * 4  # the top 2 only
    assert ("emotion: no speaker-general test (F_speaker, p_perm, selective): 1 speaker(s) hold every "
            "one of its 2 levels with at least stats.min_clips_per_cell = 2 clip(s) each; the test of "
            "speakers' level contrasts needs two; descriptive columns only") in notes
    assert any(n.startswith("gender: not tested") for n in notes)


def test_an_empty_selection_ablates_nothing_and_says_why(tmp_path, tiny_model, root_with_a_short_clip, caplog):
    """An empty selection is a result: the job writes empty tables with their columns, and the log
    names the keys that would ablate anyway."""
    root, clips = root_with_a_short_clip
    path = tmp_path / "selected_units.parquet"
    pd.DataFrame({"site": pd.Series(dtype=str), "layer": pd.Series(dtype="int32"),
                  "neuron": pd.Series(dtype="int32")}).to_parquet(path)
    section = {"units_from": "selection", "sites": ["hidden"], "layers": "all", "neurons": "all", "seed": 0,
               "loudness_threshold_db": -35}
    settings = AblationSettings.from_config(section, {"baseline": "zero", "segment_ms": "20", "reduction": "mean"},
                                            4, path)
    result = ablate_clips(tiny_model, clips, root, settings, progress=False)
    assert result.curves == {} and result.summary.empty and result.segments.empty and result.failed.empty
    assert list(result.summary.columns) == list(SUMMARY_SCHEMA) and list(result.units.columns) == ["site", "layer",
                                                                                                    "neuron"]
    assert NOTHING_SELECTED in caplog.text and "selection.require_selective: false" in NOTHING_SELECTED


def test_failed_clips_table_and_problems_page(tmp_path):
    combo = tmp_path / "results/model~m/ablation/baseline~zero/segment_ms~20/reduction~mean/failed"
    combo.mkdir(parents=True)
    pd.DataFrame([{"clip_id": "c1", "path": "A/c1.wav", "stage": "ablation", "error": "RuntimeError: x"}]
                 ).to_parquet(combo / "shard-0.parquet")
    empty = tmp_path / "shard-1.parquet"
    pd.DataFrame({c: pd.Series(dtype=t) for c, t in FAILED_SCHEMA.items()}).to_parquet(empty)
    assert combination_of(combo / "shard-0.parquet") == "baseline~zero/segment_ms~20/reduction~mean"
    failed = failed_clips([empty, combo / "shard-0.parquet"])
    assert failed.values.tolist() == [["c1", "A/c1.wav", "ablation", "RuntimeError: x",
                                       "baseline~zero/segment_ms~20/reduction~mean"]]
    rejected = pd.DataFrame({"path": ["A/bad.wav"], "reason": ["too short: <0.1 s"]})
    page = problems_page(rejected, failed, {"selectivity": ["gender: not tested"]})
    assert "Files the index rejected (1)" in page and "too short: &lt;0.1 s" in page
    assert "Clips that failed inside a job (1)" in page and "RuntimeError: x" in page
    assert "Analyses not computed (1 table)" in page
    assert "<h3>selectivity</h3>\n<ul>\n<li>gender: not tested</li>" in page


def test_the_problems_page_gives_each_reason_once_under_its_table():
    """A question-5 note of every combination's graded_effects stands once under graded_effects, not
    under the other questions' tables; a note of some combinations names them."""
    from speechneurons.problems import grouped_notes

    combos = ["baseline~zero/segment_ms~20", "baseline~zero/segment_ms~100"]
    names = ["selectivity", "probes", *[f"{c}/{q}" for c in combos for q in ("loudness", "graded_effects")]]
    notes = {"selectivity": ["emotion: no speaker-general test"],
             **{f"{c}/graded_effects": ["question 5: no speaker recorded both levels"] for c in combos},
             f"{combos[1]}/loudness": ["loudness: no clip has a quiet segment"]}
    assert grouped_notes(notes, names) == [
        ("selectivity", [("emotion: no speaker-general test", "")]),
        ("loudness", [("loudness: no clip has a quiet segment",
                      "1 of 2 combinations: baseline~zero/segment_ms~100")]),
        ("graded_effects", [("question 5: no speaker recorded both levels", "all 2 combinations")]),
    ]
    page = problems_page(pd.DataFrame({"path": [], "reason": []}), pd.DataFrame(columns=[
        "clip_id", "path", "stage", "combination", "error"]), notes, None, names)
    assert page.count("question 5: no speaker recorded both levels") == 1
    assert "Analyses not computed (3 tables)" in page


def test_the_run_summary_says_where_to_look(tmp_path):
    from speechneurons.problems import run_summary
    from speechneurons.provenance import build, write_table

    rejected = tmp_path / "rejected.parquet"
    write_table(pd.DataFrame({"path": ["a.txt", "b.wav"], "reason": ["not audio", "cut"]}), rejected, {})
    failed = tmp_path / "failed.parquet"
    write_table(pd.DataFrame({"clip_id": ["c1", "c1", "c2"], "path": ["p1", "p1", "p2"],
                              "stage": ["activations", "ablation", "ablation"], "error": ["x", "x", "y"]}),
                failed, {})
    noted = tmp_path / "probes.parquet"
    write_table(pd.DataFrame({"layer": [1]}), noted, build("probes", {}, notes=["one speaker: no probe"]))
    fine = tmp_path / "fine.parquet"
    write_table(pd.DataFrame({"layer": [1]}), fine, {})
    summary = run_summary(rejected, {"m": (failed, "page.html", {"probes": noted, "fine": fine,
                                                                  "later": tmp_path / "absent.parquet"})})
    assert summary.splitlines() == [
        "speechneurons: the run finished.",
        f"2 file(s) under dataset.root are not clips, each with its reason: {rejected}",
        f"model m: 2 clip(s) failed in some job: {failed}",
        "model m: 1 table(s) hold analyses that were not computed, each with why: page.html",
        "The report: snakemake --report results/report.html (then open it in a browser).",
    ]
    assert run_summary(tmp_path / "none.parquet", {}).count("\n") == 1  # files not there: passed over
