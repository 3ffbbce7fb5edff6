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


def documented_columns(repo, file: str) -> list[str]:
    """The columns docs/outputs.md lists for ``file``: the names before any parenthesis."""
    for line in (repo / "docs/outputs.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and f"`{file}`" in cells[0]:
            text = re.sub(r"\([^)]*\)", "", cells[2].split(" — ")[0])
            return [name.strip() for name in text.split(",")]
    raise AssertionError(f"docs/outputs.md has no row for {file}")


def test_the_output_contract_names_the_code_s_columns(repo):
    """The table of docs/outputs.md and the schemas the code writes cannot drift apart."""
    from speechneurons.ablation.summary import SUMMARY_SCHEMA
    from speechneurons.datasets.index import REJECTED_COLUMNS
    from speechneurons.failures import FAILED_SCHEMA
    from speechneurons.problems import FAILED_CLIPS_SCHEMA
    from speechneurons.schemas import ACTIVATION_SCHEMA, SEGMENT_SCHEMA
    from speechneurons.stats.selection import REPLICATION_SCHEMA

    contract = {
        "results/index/rejected.parquet": REJECTED_COLUMNS,
        "R/activations/shard-K.parquet": list(ACTIVATION_SCHEMA),
        "R/activations/failed/shard-K.parquet": list(FAILED_SCHEMA),
        "R/tables/failed_clips.parquet": list(FAILED_CLIPS_SCHEMA),
        "R/tables/replication.parquet": list(REPLICATION_SCHEMA),
        "R/ablation/<combo>/segments/shard-K.parquet": list(SEGMENT_SCHEMA),
        "R/ablation/<combo>/summary/shard-K.parquet": list(SUMMARY_SCHEMA),
    }
    for file, columns in contract.items():
        assert documented_columns(repo, file) == columns, file
