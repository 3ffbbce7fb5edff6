"""What the benchmarks share: running code against the package as it was at an earlier commit,
side by side, and writing the report.

``package_at`` writes that commit's ``speechneurons`` (``git archive``) into a folder;
``run_with`` runs a snippet in a fresh Python whose ``speechneurons`` is that folder's (or this
checkout's), outside this checkout so that it cannot be imported from the working directory,
and returns the JSON the snippet printed last. The snippet reports ``module`` (the file of
``speechneurons``), which is checked against the package asked for. ``write_report`` prints a
report and writes it where ``--out`` says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def package_at(commit: str, folder: Path) -> Path:
    """``folder`` holding ``speechneurons`` as it was at ``commit``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "speechneurons"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_with(package: Path, snippet: str, *args: str, threads: int, workdir: Path) -> dict:
    """The last JSON line ``snippet`` prints, run with ``package`` first on the path and every
    thread pool at ``threads``."""
    env = {**os.environ, "PYTHONPATH": str(package), "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", snippet, *args], capture_output=True, text=True, env=env,
                          cwd=workdir)
    if done.returncode:
        raise RuntimeError(f"the snippet failed with {package}:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not out.get("module", "").startswith(str(package)):
        raise RuntimeError(f"imported {out.get('module')}, not the package in {package}")
    return out


def base_units():
    """WavLM Base's cached units, as the activation cache holds them: 13 hidden layers of 768 and
    12 feed-forward layers of 3,072 (46,848 rows: site, layer, neuron)."""
    import numpy as np
    import pandas as pd

    units = pd.concat([pd.DataFrame({"site": "hidden", "layer": np.repeat(np.arange(13), 768),
                                     "neuron": np.tile(np.arange(768), 13)}),
                       pd.DataFrame({"site": "ffn", "layer": np.repeat(np.arange(1, 13), 3072),
                                     "neuron": np.tile(np.arange(3072), 12)})], ignore_index=True)
    return units.astype({"layer": "int32", "neuron": "int32"})


def write_report(report: dict, out: str | None) -> None:
    """Print ``report`` as JSON and write it to ``out`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
