"""The workflow's Snakemake files pass the catalog's checks: snakefmt and ``snakemake --lint``,
and the conda environment every rule names pins what constraints.txt pins."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _pins(lines: list[str]) -> dict[str, str]:
    """``name==version`` lines as {normalised name: version}."""
    pins = {}
    for line in lines:
        line = line.strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_snakefmt_leaves_every_snakemake_file_unchanged():
    done = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "."], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr + done.stdout


@pytest.mark.parametrize("configfile", ["config.yaml", "config/ravdess-full.yaml"])
def test_snakemake_lint_finds_nothing(configfile, tmp_path):
    # a study config's root is checked before any job: here the bundled clips stand in for its corpus
    (tmp_path / "root.yaml").write_text(f"dataset: {{root: {REPO / 'data/ravdess-mini'}}}\n")
    done = subprocess.run(
        [str(BIN / "snakemake"), "--lint", "--configfile", configfile, str(tmp_path / "root.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Lints for" not in output, output
    assert "Congratulations, your workflow is in a good condition!" in output


def test_the_rules_environment_pins_the_versions_ci_tests():
    """envs/speechneurons.yaml (``--sdm conda``) holds every run-time dependency of the package at
    the version constraints.txt pins; Snakemake itself runs outside it."""
    environment = yaml.safe_load((REPO / "envs/speechneurons.yaml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    in_environment = _pins(pip)
    tested = _pins((REPO / "constraints.txt").read_text().splitlines())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = {
        re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[]", d)[0]).lower()
        for d in project["dependencies"]
    }
    needed = {n for n in needed if not n.startswith("snakemake")}
    assert set(in_environment) == needed
    assert {n: tested[n] for n in needed} == in_environment
    assert "python=" + project["requires-python"].split(">=")[1].split(",")[0] in (
        environment["dependencies"]
    )
