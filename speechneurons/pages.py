"""The workflow's HTML pages, rendered from Jinja2 templates with every value autoescaped.

The templates are in ``speechneurons/templates/``; ``base.html`` is every
page's skeleton and ``player.html`` the audio player with its playback
cursor. A module that renders a page names its template in a module
constant ``TEMPLATE``: :mod:`speechneurons.codehash` then hashes the template,
and those it extends, imports or includes, with the module, so that an
edit of a template reruns the jobs that write its pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

#: The folder of the page templates.
TEMPLATE_DIR = Path(__file__).with_name("templates")

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **values: Any) -> str:
    """The page ``template`` (a file name in TEMPLATE_DIR) with ``values``, every one escaped."""
    return _ENVIRONMENT.get_template(template).render(**values)
