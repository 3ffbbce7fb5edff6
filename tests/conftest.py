"""Shared fixtures: the bundled real clips and a tiny WavLM loaded via from_pretrained."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_ROOT = REPO / "data" / "ravdess-mini"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_root() -> Path:
    return DEMO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from speechneurons.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-wavlm", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    import torch

    from speechneurons.models import load_speech_model

    torch.set_num_threads(2)
    return load_speech_model(str(tiny_model_dir), device="cpu")
