"""The import graph is the rerun graph: each script's closure of package modules (what its rule's
code hash follows) holds only what its stage does."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechneurons.codehash import script_modules

REPO = Path(__file__).resolve().parents[1]

#: what the jobs that run the model (the costly ones) must not depend on
NOT_IN_MODEL_JOBS = ("aggregate.py", "cache.py", "questions.py", "probes.py", "figures.py", "pages.py",
                     "listen.py", "browser.py", "problems.py", "calibration.py", "ablation/store.py",
                     "models/tiny.py", "knockout/effects.py", "stats/", "datasets/", "reliability/report.py",
                     "reliability/agreement.py", "reliability/bootstrap.py")
#: the torch stack: what the jobs that only read files must not depend on
MODEL_STACK = ("models/", "ablation/engine.py", "ablation/run.py", "knockout/forward.py",
               "reliability/sample.py", "activations.py")


def closure(script: str) -> list[str]:
    """The package files ``scripts/<script>.py`` depends on, relative to the package."""
    return [p.relative_to(REPO / "speechneurons").as_posix()
            for p in script_modules(REPO / "scripts" / f"{script}.py", REPO)]


@pytest.mark.parametrize("script", ["activations", "ablation", "knockout_activations",
                                    "reliability_deletion", "reliability_randomisation", "sae_frames"])
def test_model_jobs_depend_on_no_statistics_aggregation_or_pages(script):
    # the knock-out's sets are drawn from the activation cache, in the corpus's levels
    allowed = {"knockout_activations": ("cache.py", "datasets/__init__.py", "datasets/spec.py")}
    found = [m for m in closure(script) if m.startswith(NOT_IN_MODEL_JOBS)
             and not m.startswith(allowed.get(script, ()))]
    assert found == []


@pytest.mark.parametrize("script", ["aggregate", "figures", "listening", "unit_browser", "problems",
                                    "question_figures", "selectivity_figures", "questions", "probes",
                                    "knockout", "selectivity", "select_units", "layer_specialisation",
                                    "models_by_layer", "reliability_agreement", "reliability_bootstrap",
                                    "reliability_report", "index", "index_shard", "prosody", "unit_prosody",
                                    "prosody_figures", "sae_train", "sae_report", "neurons_vs_features"])
def test_jobs_that_read_files_depend_on_no_model_code(script):
    assert [m for m in closure(script) if m.startswith(MODEL_STACK)] == []


def test_the_prosody_jobs_depend_on_what_they_do():
    """Praat's stage reads audio and writes a table: no statistics, questions or pages; its figure
    draws and renders: no statistics; no model job depends on prosody."""
    assert not [m for m in closure("prosody") if m.startswith(("stats/", "questions.py", "figures.py", "pages.py",
                                                               "cache.py", "ablation/"))]
    assert not [m for m in closure("prosody_figures") if m.startswith(("stats/", "questions.py", "unit_prosody.py"))]
    assert "unit_prosody.py" in closure("unit_prosody") and "stats/fdr.py" in closure("unit_prosody")
    for script in ("activations", "ablation", "knockout_activations"):
        assert not [m for m in closure(script) if "prosody" in m]


def test_the_model_jobs_closures_are_small():
    """Measured 2026-12-02 before the cut: activations 26 modules, ablation 30, reliability_agreement
    42, reliability_report 46; after: 20, 26, 10, 15; with the leaf modules combination.py and
    settings.py (issue 21, item 2): 20, 28, 11, 16; with models/memory.py (the out-of-memory halving
    the engine and the knock-out share, issue 22): 20, 29, 11, 16; with threads.py (every job pins
    its thread pools): 21, 30, 12, 17; with integrity.py (every job reads its tables with page
    checksums, issue 37) and, for the activations, pooling.py in and sae_site.py out (the latents have
    their own job): 23, 32, 13, 18."""
    sizes = {s: len(closure(s)) for s in ("activations", "ablation", "reliability_agreement",
                                          "reliability_report")}
    assert sizes == {"activations": 23, "ablation": 32, "reliability_agreement": 13, "reliability_report": 18}
