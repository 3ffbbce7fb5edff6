"""Every HTML page the workflow writes escapes every value it is given (Jinja2 autoescaping); the
pages opened in headless Chromium are in test_browser.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speechneurons.browser import browser_page, unit_article
from speechneurons.listen import ClipSection, listening_page
from speechneurons.problems import problems_page
from speechneurons.reliability.report import reliability_page

PAYLOAD = "<script>alert('x')</script>&\""
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#34;"


def section() -> ClipSection:
    return ClipSection(title=PAYLOAD, audio="UklGRg==", image="iVBORw0=", duration=1.5, left=10.0, span=80.0)


def pages() -> dict[str, str]:
    table = pd.DataFrame({"path": [PAYLOAD], "reason": [PAYLOAD]})
    failed = pd.DataFrame({c: [PAYLOAD] for c in ["clip_id", "path", "stage", "combination", "error"]})
    clips = pd.DataFrame({"clip_id": [PAYLOAD], "path": [PAYLOAD], "audio_flags": [PAYLOAD]})
    article = unit_article(PAYLOAD, {PAYLOAD: PAYLOAD}, "iVBORw0=", [section()])
    return {
        "problems": problems_page(table, failed, {f"{PAYLOAD}/loudness": [PAYLOAD]}, clips),
        "listening": listening_page(PAYLOAD, PAYLOAD, [section()]),
        "browser": browser_page(PAYLOAD, PAYLOAD, [article]),
        "reliability": reliability_page(PAYLOAD, [(PAYLOAD, PAYLOAD)], [PAYLOAD]),
    }


def test_every_page_escapes_every_value():
    for name, page in pages().items():
        assert PAYLOAD not in page and "alert('x')" not in page, name
        assert page.count(ESCAPED) >= 3, name
        # the only scripts are the pages' own players
        assert page.count("<script>") == (1 if name in {"listening", "browser"} else 0), name


def test_the_player_sections_carry_their_axes_and_duration():
    page = listening_page("t", "d", [section(), section()])
    assert page.count('<section class="clip" data-left="10.0" data-span="80.0" data-duration="1.5">') == 2
    assert page.count('src="data:audio/wav;base64,UklGRg=="') == 2
    assert np.isclose(float(page.split('data-span="')[1].split('"')[0]), 80.0)


def test_a_browser_page_without_units_says_so():
    assert "<p>No unit was selected.</p>" in browser_page("t", "d", [])
