"""The README is one page that points to docs/, and every link in the docs leads to a file."""

from __future__ import annotations

import re

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def pages(repo):
    return [repo / "README.md", repo / "config/README.md", repo / "bench/README.md",
            repo / "CHANGELOG.md", *sorted((repo / "docs").glob("*.md"))]


def test_every_relative_link_leads_to_a_file(repo):
    checked = 0
    for page in pages(repo):
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(repo)}: no {target}"
            checked += 1
    assert checked > 20


def test_the_readme_is_one_page_and_maps_every_doc(repo):
    readme = (repo / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for doc in sorted((repo / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, doc.name
    assert "make demo" in readme and "make test" in readme
