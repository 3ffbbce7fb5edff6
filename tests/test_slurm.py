"""The demo through a real one-node Slurm cluster equals a local run, table by table.

Runs only with SPEECHNEURONS_SLURM_TEST=1 (``make test-slurm``, a stage of
.ci/run): it installs and starts Debian's Slurm and munge as root
(tests/slurm/start-cluster.sh) and stops them afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from snakemake_runs import SNAKEMAKE

pytestmark = pytest.mark.skipif(os.environ.get("SPEECHNEURONS_SLURM_TEST") != "1",
                                reason="set SPEECHNEURONS_SLURM_TEST=1 (make test-slurm) to run")
SLURM_ARGS = ["--executor", "slurm", "--jobs", "2", "--slurm-status-command", "squeue",
              "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2",
              "--default-resources", "slurm_partition=debug", "mem_mb=1000", "runtime=10"]


@pytest.fixture(scope="module")
def cluster(repo):
    scripts = repo / "tests/slurm"
    subprocess.run(["bash", str(scripts / "start-cluster.sh")], check=True, timeout=600)
    yield
    subprocess.run(["bash", str(scripts / "stop-cluster.sh")], timeout=60)


def run(workdir: Path, repo: Path, demo_root: Path, *args: str) -> None:
    workdir.mkdir()
    shutil.copy(repo / "config.yaml", workdir / "config.yaml")
    # one ablation combination of the demo's four: every stage still runs through Slurm, in half the time;
    # without the SAEs (their jobs are of the kinds that do run here: a forward pass per shard, a torch
    # job per layer), so that CI stays well under its 30 minutes
    (workdir / "override.yaml").write_text(yaml.safe_dump({
        "dataset": {"root": str(demo_root)}, "ablation": {"baselines": ["zero"], "segment_ms": [20]},
        "sae": {"enabled": False}, "probes": {"sites": ["hidden"]}}))
    cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--configfile", "config.yaml",
           "override.yaml", *args]
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def test_slurm_run_equals_local_run(cluster, repo, demo_root, tmp_path):
    run(tmp_path / "local", repo, demo_root, "--cores", "2")
    run(tmp_path / "slurm", repo, demo_root, *SLURM_ARGS)
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local/results").rglob("*.parquet"))
    slurm = sorted(p.relative_to(tmp_path / "slurm") for p in (tmp_path / "slurm/results").rglob("*.parquet"))
    assert local == slurm and len(local) > 10
    for name in local:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "slurm" / name),
                                      pd.read_parquet(tmp_path / "local" / name),
                                      check_exact=True, obj=str(name))
    from safetensors.numpy import load_file

    for path in sorted((tmp_path / "local/results").rglob("*.safetensors")):
        theirs = load_file(tmp_path / "slurm" / path.relative_to(tmp_path / "local"))
        for clip, values in load_file(path).items():
            np.testing.assert_array_equal(theirs[clip], values)
