"""Every job holds its BLAS, OpenMP and torch thread pools to the threads its rule was given."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", sorted(p.stem for p in (REPO / "scripts").glob("*.py")))
def test_every_script_pins_its_threads_before_its_work(script):
    """The call comes right after the log is set up, before anything else the script does."""
    tree = ast.parse((REPO / "scripts" / f"{script}.py").read_text())
    calls = [node.value.func.id for node in tree.body
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
             and isinstance(node.value.func, ast.Name)]
    assert calls[:2] == ["log_to_file", "pin_threads"], calls


def test_pinned_threads_hold_in_every_pool_loaded_before_or_after():
    code = """
import json, numpy
import torch
from speechneurons.threads import pin_threads
pin_threads(1)
import scipy.linalg  # loaded after the call: its OpenBLAS reads the environment
scipy.linalg.svd(numpy.ones((50, 50)))
from threadpoolctl import threadpool_info
print(json.dumps({"pools": [p["num_threads"] for p in threadpool_info()], "torch": torch.get_num_threads()}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(found["pools"]) >= 2 and set(found["pools"]) == {1} and found["torch"] == 1
