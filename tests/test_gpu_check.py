"""bench/gpu_check.sh runs on the CPU with the tiny model, so that the GPU check cannot rot (no test
needs a GPU): every section runs, its equality checks pass, and a section that breaks is recorded
while the others still run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from speechneurons.models.families import FAMILIES


def test_the_gpu_check_runs_every_section_on_the_cpu_with_the_tiny_model(repo, tmp_path):
    out = tmp_path / "gpu-check.json"
    run = subprocess.run(
        [str(repo / "bench/gpu_check.sh"), "--model", "tiny", "--device", "cpu", "--clips", "3",
         "--sweep-budget-s", "0.1", "--batch", "32", "--repeats", "1", "--speed-batches", "8,16", "--threads", "2", "--out", str(out)],
        capture_output=True, text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == [] and report["environment"]["device"] == "cpu"
    checks = report["model_checks"]
    families = {name.rsplit("-", 1)[0] for name in checks["layouts"]}
    assert families == set(FAMILIES) and checks["passed"] and checks["worst"] <= 1e-5
    assert report["engine_device_vs_cpu"]["units"] == 3 * 32 and report["engine_device_vs_cpu"]["passed"]
    speed = report["engine_speed"]
    assert set(speed["batches"]) == {"8", "16"} and speed["segments"] == 174
    assert all(r["engine_s"] > 0 and r["floor_s"] > 0 for r in speed["batches"].values())
    assert report["knockout"]["passed"] and report["knockout"]["layers"]["1"]["max_abs_difference"] <= 1e-5
    sweep = report["sweep"]
    # hidden 0..2 (3 x 32 units) and ffn 1..2 (2 x 64 units) per clip
    assert sweep["activations"]["rows"] == 3 * (3 * 32 + 2 * 64)
    assert 1 <= sweep["ablation"]["clips_timed"] <= 3 and sweep["ablation"]["seconds_per_clip"] > 0


def test_a_section_that_breaks_is_recorded_and_fails_the_run(repo, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", repo / "bench/gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure in the knock-out")

    monkeypatch.setattr(gpu_check, "knocked_layer", broken)
    out = tmp_path / "gpu-check.json"
    code = gpu_check.main(["--model", "tiny", "--device", "cpu", "--sections", "knockout,engine_device_vs_cpu",
                           "--threads", "2", "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == 1 and report["failed"] == ["knockout"]
    assert "planted failure in the knock-out" in report["knockout"]["error"]
    assert report["engine_device_vs_cpu"]["passed"]
    with pytest.raises(SystemExit):
        gpu_check.main(["--sections", "knockout,nonsense", "--device", "cpu"])
