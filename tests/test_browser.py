"""The unit browser opens in headless Chromium (Debian's package) with no console error, and hostile
names in the data run no script in the Snakemake report or the project's pages.

Runs where ``chromium`` is on the PATH; ``make test-browser`` installs it and
sets SPEECHNEURONS_BROWSER_TEST=1, which turns a missing browser into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audio_files import write_tone
from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.browser import browser_page, factor_panels, unit_article, unit_numbers
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.listen import clip_section

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("SPEECHNEURONS_BROWSER_TEST"),
                                reason="no chromium on the PATH (make test-browser installs it)")


def chromium(page: Path, *flags: str) -> tuple[str, list[str]]:
    """Headless Chromium on ``page`` with ``flags``: its stdout and its console lines."""
    assert CHROMIUM, "SPEECHNEURONS_BROWSER_TEST is set but chromium is not installed"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", *flags, page.as_uri()], capture_output=True, text=True, timeout=180)
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def console_errors(page: Path, screenshot: Path) -> list[str]:
    """Chromium's console lines for ``page``, after writing a screenshot."""
    return chromium(page, "--window-size=1100,1400", f"--screenshot={screenshot}")[1]


def test_unit_browser_loads_without_console_errors(demo_root, tmp_path):
    meta = full_design(actors=range(1, 7), emotions=["neutral", "happy", "sad", "angry"])
    values = np.random.default_rng(0).normal(size=len(meta))
    unit = pd.Series({"site": "hidden", "layer": 2, "neuron": 7, "emotion": "happy", "rank": 1, "score": 1.2})
    selectivity = pd.DataFrame({"site": ["hidden"], "layer": [2], "neuron": [7], "factor": ["emotion"],
                                "eta2": [0.2], "q_speaker": [0.01], "selective": [True]})
    probes = pd.DataFrame({"site": ["hidden"], "layer": [2], "factor": ["emotion"], "balanced_accuracy": [0.4],
                           "ci_low": [0.3], "ci_high": [0.5], "chance": [0.25], "p_perm": [0.05]})
    knockout = pd.DataFrame({"site": ["hidden"], "layer": [2], "probe_layer": [2], "level": ["happy"], "own_loss_selected": [0.2],
                             "own_loss_random": [0.01], "specificity_difference": [0.18], "ci_low": [0.05],
                             "ci_high": [0.3], "p": [0.01]})
    numbers = unit_numbers(unit, SPEC, selectivity, probes, knockout)
    assert set(numbers) == {"top unit for emotion", "emotion selectivity", "probe for emotion at this layer",
                            "knock-out of its level's units"}
    wave = load_waveform(next(demo_root.rglob("*.wav")))
    starts = np.arange(0, len(wave) / MODEL_SAMPLE_RATE, 0.02)
    curve = pd.DataFrame({"start_s": starts, "end_s": starts + 0.02,
                          "attribution": np.sin(np.arange(len(starts)) / 7)})
    article = unit_article("hidden layer 2, neuron 7", numbers, factor_panels(values, meta, SPEC, "unit"),
                           [clip_section("a clip", wave, MODEL_SAMPLE_RATE, curve)])
    page = tmp_path / "browser.html"
    page.write_text(browser_page("Unit browser", "test page", [article, article]))
    text = page.read_text()
    assert text.count("<article>") == 2 and text.count("<audio") == 2
    assert "http://" not in text and "https://" not in text  # self-contained
    screenshot = tmp_path / "browser.png"
    assert console_errors(page, screenshot) == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    # the check can fail: a page with a script error is reported
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace("</body>", "<script>notDefined();</script></body>"))
    assert any("notDefined" in line for line in console_errors(broken, tmp_path / "broken.png"))


#: each a payload that logs its own number when a page runs it as HTML
HOSTILE_FILE = "<img src=x onerror=console.error(31337)>"  # a clip's file name (so its clip id)
HOSTILE_SPEAKER = "</script><script>console.error(31338)</script>"  # ends every speaker's id
HOSTILE_UNLISTED = "\"'><svg onload=console.error(31339)>"  # a file no manifest row lists (rejected)
HOSTILE_SESSION = "<b onmouseover=x>day</b><script>console.error(31341)</script>"  # an extra column
MARKERS = ("31337", "31338", "31339", "31340", "31341")
#: a payload that became an element of the page rather than text in it (the DOM quotes a real
#: attribute's value; text holding a payload, in an element or an attribute, keeps it unquoted)
PAYLOAD_ELEMENT = re.compile(r'\son[a-z]+="console\.error\(3133|<script>console\.error\(3133')
#: config strings the schema lets through (quotes, ampersands, a backslash: no < or >)
ODD_LEVEL = "tense & \"wound\" 'up' \\"


def browse(page: Path, seconds: int = 5) -> tuple[str, list[str]]:
    """The DOM of ``page`` after ``seconds`` of its scripts' time, and its console lines."""
    return chromium(page, f"--virtual-time-budget={seconds * 1000}", "--dump-dom")


def hostile_manifest_tree(root: Path) -> Path:
    """4 talkers x 2 moods x 2 takes of tones, with hostile names in a file, every speaker, a
    session value and a file no row lists."""
    from corpus_trees._tones import tone

    rows = ["file\ttalker\tmood\tsex\tsession"]
    for s, sex in enumerate("fmfm"):
        for m, mood in enumerate(["relaxed", ODD_LEVEL]):
            for take in (1, 2):
                stem = HOSTILE_FILE if (s, m, take) == (0, 0, 1) else f"take{m}{take}"
                name = f"rec/s{s}/{stem}.wav"
                tone(root / name, m, s)
                session = HOSTILE_SESSION if take == 1 else "day2"
                rows.append(f"{name}\tt{s}{HOSTILE_SPEAKER}\t{mood}\t{sex}\t{session}")
    write_tone(root / f"rec/{HOSTILE_UNLISTED}.wav", seconds=0.5)
    (root / "clips.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.workflow
def test_hostile_names_run_no_script_in_the_report_or_the_pages(repo, tmp_path, tiny_model_dir):
    """A study whose data hold script in a file name, every speaker, a column value and a rejected
    file, and whose config holds quotes, ampersands and a backslash in a level: the Snakemake report
    and the project's pages open in Chromium, show those names as text and run none of them. A copy
    of a page with one payload left unescaped does log its number: the check can fail."""
    from snakemake_runs import snakemake

    root = hostile_manifest_tree(tmp_path / "data")
    study = {
        "dataset": {"name": "manifest", "root": str(root), "manifest": {
            "file": "clips.tsv", "path_column": "file", "speaker_column": "talker",
            "factors": {"mood": {"levels": ["relaxed", ODD_LEVEL], "varies": "within"},
                        "sex": {"levels": ["f", "m"], "varies": "between"}},
            "target": "mood", "group": "sex", "graded": None, "extra_columns": ["session"]}},
        "model": {"name_or_path": str(tiny_model_dir), "build_tiny": False},
        "compute": {"shards": 1, "device": "cpu"},
        "activations": {"sites": ["hidden"]},
        "stats": {"permutations": 19, "mixed_top_units": 1},
        "selection": {"top_k": 1, "random_controls": 1, "folds": 2, "require_selective": False},
        "ablation": {"baselines": ["zero"], "segment_ms": [20]},
        "probes": {"enabled": False}, "knockout": {"enabled": False}, "reliability": {"enabled": False},
        "browser": {"enabled": True, "units": 2, "clips_per_unit": 2},
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    (tmp_path / "config.yaml").write_text((repo / "config.yaml").read_text())
    snakemake(tmp_path, repo, "--cores", "2", configs=("study.yaml",))
    snakemake(tmp_path, repo, "--cores", "1", "--report", "results/report.html", configs=("study.yaml",))

    clips = pd.read_parquet(tmp_path / "results/index/clips.parquet")
    assert clips["speaker"].str.endswith(HOSTILE_SPEAKER).all() and ODD_LEVEL in set(clips["mood"])
    assert any(HOSTILE_FILE in clip for clip in clips["clip_id"])
    run = tmp_path / f"results/model~{tiny_model_dir.name}"
    combo = "baseline~zero/segment_ms~20/reduction~mean"
    pages = {"report": tmp_path / "results/report.html", "problems": run / "figures/problems.html",
             "listening": run / f"figures/{combo}/listening.html",
             "browser": run / f"figures/{combo}/unit_browser.html"}
    speaker = "&lt;/script&gt;&lt;script&gt;console.error(31338)&lt;/script&gt;"
    shown = {"report": "Snakemake", "problems": "&lt;svg onload=console.error(31339)&gt;",
             "listening": speaker, "browser": speaker}
    for name, page in pages.items():
        dom, console = browse(page)
        assert [line for line in console if any(m in line for m in MARKERS)] == [], (name, console)
        assert shown[name] in dom, name  # rendered, and the hostile names shown as text
        assert not PAYLOAD_ELEMENT.search(dom), (name, PAYLOAD_ELEMENT.search(dom))

    # the check can fail: a page with one payload unescaped runs it
    text = pages["report"].read_text()
    assert text.count('"params": "') > 5
    tampered = tmp_path / "tampered-report.html"
    tampered.write_text(text.replace('"params": "', '"params": "</script><script>console.error(31340)</script>', 1))
    assert any("31340" in line for line in browse(tampered)[1])
    problems = pages["problems"].read_text()
    tampered = tmp_path / "tampered-problems.html"
    tampered.write_text(problems.replace("&lt;svg onload=console.error(31339)&gt;",
                                         "<svg onload=console.error(31339)>", 1))
    dom, console = browse(tampered)
    assert any("31339" in line for line in console) and PAYLOAD_ELEMENT.search(dom)
