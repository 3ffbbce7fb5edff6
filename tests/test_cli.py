"""The quick look: speechneurons analyze, on the bundled clips and on a folder that is not RAVDESS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audio_files import write_tone
from corpus_trees import TREES
from speechneurons.audio import load_waveform
from speechneurons.cli import main


def test_one_clip_one_neuron(demo_root, tiny_model_dir, tmp_path, capsys):
    code = main(["analyze", "--ravdess_path", str(demo_root), "--emotion", "angry", "--layer", "1",
                 "--neuron", "5", "--model", str(tiny_model_dir), "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr()
    assert "the original guide's --layer 1" in out.err and "hidden layer 2" in out.err
    png, table_path = sorted(tmp_path.glob("*.png")), sorted(tmp_path.glob("*.parquet"))
    assert len(png) == 1 and len(table_path) == 1 and png[0].with_suffix(".pdf").exists()
    table = pd.read_parquet(table_path[0])
    clip = table["clip_id"].iloc[0]
    assert set(table["emotion"]) == {"angry"} and set(table["layer"]) == {2}
    path = next(demo_root.rglob(f"{clip}.wav"))
    assert len(table) == -(-len(load_waveform(path)) // 320)
    assert table["attribution"].abs().max() > 0


def test_compare_emotions_side_by_side(demo_root, tiny_model_dir, tmp_path):
    code = main(["analyze", "--ravdess-path", str(demo_root), "--compare", "--hidden-layer", "2",
                 "--neuron", "7", "--gender", "female", "--model", str(tiny_model_dir),
                 "--baseline", "noise-snr20", "--segment-ms", "40", "--out", str(tmp_path)])
    assert code == 0
    table = pd.read_parquet(next(tmp_path.glob("compare_*.parquet")))
    # female actors in the demo: neutral (12), happy (12), sad (04), angry (06)
    assert sorted(table["emotion"].unique()) == ["angry", "happy", "neutral", "sad"]
    assert set(table["gender"]) == {"female"}
    assert (table["end_s"] - table["start_s"]).max() <= 0.04 + 1e-6


def test_a_folder_that_is_not_ravdess_says_so(tmp_path, tiny_model_dir, capsys):
    write_tone(tmp_path / "recordings" / "interview.wav")
    code = main(["analyze", "--ravdess-path", str(tmp_path / "recordings"), "--layer", "0",
                 "--neuron", "1", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "recordings") in err and "expected Actor_NN/MM-VV-EE-II-SS-RR-AA.wav" in err
    assert main(["analyze", "--ravdess-path", str(tmp_path / "missing"), "--model", "x"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_console_script_is_installed(demo_root, tiny_model_dir, tmp_path):
    script = Path(sys.executable).with_name("speechneurons")
    done = subprocess.run([str(script), "analyze", "--ravdess-path", str(demo_root), "--emotion", "sad",
                           "--layer", "0", "--neuron", "3", "--site", "ffn", "--model",
                           str(tiny_model_dir), "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "figure:" in done.stdout


def test_another_corpus_by_name_with_its_own_flags(tmp_path, tiny_model_dir):
    root, _, _ = TREES["emodb"](tmp_path / "emodb")
    code = main(["analyze", "--corpus", "emodb", "--root", str(root), "--compare", "--sex", "female",
                 "--text", "a01", "--hidden-layer", "1", "--neuron", "2", "--model", str(tiny_model_dir),
                 "--out", str(tmp_path / "out")])
    assert code == 0
    table = pd.read_parquet(next((tmp_path / "out").glob("compare_*.parquet")))
    assert sorted(table["emotion"].unique()) == ["anger", "happiness", "neutral"]
    assert set(table["sex"]) == {"female"} and set(table["text"]) == {"a01"}
    assert set(table["speaker"]) <= {"08", "09"}


def run_module(*args: str) -> subprocess.CompletedProcess:
    """``python -m speechneurons ARGS``, then whether torch was imported (the last line of stdout)."""
    code = ("import runpy, sys\nsys.argv = ['speechneurons', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('speechneurons', run_name='__main__')\n"
            "except SystemExit as end:\n    print('torch' in sys.modules)\n    raise\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--layer", "-1"], "argument --layer: -1 is negative: --layer counts from 0"),
    (["--neuron", "-3"], "argument --neuron: -3 is negative: --neuron counts from 0"),
    (["--segment-ms", "30"], "argument --segment-ms: 30 ms is not a positive multiple of the models' 20 ms frame hop"),
    (["--ravdess-path", "/no/such/folder"], "error: --ravdess-path: /no/such/folder is not a folder"),
    (["--emotion", "calm", "--gender", "male"],
     "none passed the flags (--emotion calm --gender male)"),
])
def test_errors_name_the_flags_and_come_before_torch(demo_root, args, message):
    """Before: `--layer -1` ran as hidden layer 0, and the folder and filter errors spoke config keys
    (dataset.root, dataset.filters) after torch had loaded."""
    root = [] if "--ravdess-path" in args else ["--ravdess-path", str(demo_root)]
    done = run_module("analyze", *root, *args, "--model", "nowhere")
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "dataset." not in done.stderr
    assert done.stdout.splitlines()[-1] == "False"  # torch never imported


def test_the_module_runs_shows_its_version_defaults_and_refuses_the_manifest_cleanly():
    from speechneurons import __version__

    assert run_module("--version").stdout.splitlines()[0] == f"speechneurons {__version__}"
    shown = run_module("analyze", "--help").stdout
    for default in ("--neuron NEURON       the unit's index (default: 256)", "(default: results/quicklook)",
                    "(default: microsoft/wavlm-base-plus)", "which clip is drawn (default: 0)"):
        assert " ".join(default.split()) in " ".join(shown.split()), default
    manifest = run_module("analyze", "--corpus", "manifest", "--root", ".")
    assert manifest.returncode == 2 and "Traceback" not in manifest.stderr
    assert "--corpus manifest: the manifest corpus takes its design" in manifest.stderr
