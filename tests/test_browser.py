"""The unit browser opens in headless Chromium (Debian's package) with no console error.

Runs where ``chromium`` is on the PATH; ``make test-browser`` installs it and
sets SPEECHNEURONS_BROWSER_TEST=1, which turns a missing browser into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speechneurons.audio import MODEL_SAMPLE_RATE, load_waveform
from speechneurons.browser import browser_page, factor_panels, unit_article, unit_numbers
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.listen import clip_section

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("SPEECHNEURONS_BROWSER_TEST"),
                                reason="no chromium on the PATH (make test-browser installs it)")


def console_errors(page: Path, screenshot: Path) -> list[str]:
    """Chromium's console lines for ``page`` (headless), after writing a screenshot."""
    assert CHROMIUM, "SPEECHNEURONS_BROWSER_TEST is set but chromium is not installed"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", "--window-size=1100,1400", f"--screenshot={screenshot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_unit_browser_loads_without_console_errors(demo_root, tmp_path):
    meta = full_design(actors=range(1, 7), emotions=["neutral", "happy", "sad", "angry"])
    values = np.random.default_rng(0).normal(size=len(meta))
    unit = pd.Series({"site": "hidden", "layer": 2, "neuron": 7, "emotion": "happy", "rank": 1, "score": 1.2})
    selectivity = pd.DataFrame({"site": ["hidden"], "layer": [2], "neuron": [7], "factor": ["emotion"],
                                "eta2": [0.2], "q_speaker": [0.01], "selective": [True]})
    probes = pd.DataFrame({"site": ["hidden"], "layer": [2], "factor": ["emotion"], "balanced_accuracy": [0.4],
                           "ci_low": [0.3], "ci_high": [0.5], "chance": [0.25], "p_perm": [0.05]})
    knockout = pd.DataFrame({"layer": [2], "probe_layer": [2], "level": ["happy"], "own_loss_selected": [0.2],
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
