"""Running Snakemake from the tests: a run in a work folder, and the jobs a dry run plans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, repo: Path, *args: str, configs=("override.yaml",)
              ) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--configfile", "config.yaml", *configs, *args]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


def scheduled(done: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule from a dry run's "Job stats" table ({} when nothing is to be done)."""
    lines = (done.stdout + done.stderr).splitlines()
    if "Job stats:" not in lines:
        return {}
    counts = {}
    for line in lines[lines.index("Job stats:") + 3:]:
        name, _, count = line.rpartition(" ")
        if not name.strip() or name.strip() == "total":
            break
        counts[name.strip()] = int(count)
    return counts
