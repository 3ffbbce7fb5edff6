"""Tiny, randomly initialised models of each family for the demo and the tests.

The hub is unreachable in CI, so the demo builds a model from a seeded tiny
config of its family and writes it with ``save_pretrained``; every stage then
loads it through ``from_pretrained`` exactly as it would load
``microsoft/wavlm-base-plus``. Its weights are random: it exercises the code
path, it says nothing about speech.
"""

from __future__ import annotations

from pathlib import Path

import torch

from speechneurons.models.families import FAMILIES

TINY_README = """# tiny-{family}{layout} (random weights, built by speechneurons)

A {family} model with hidden size 32, 2 transformer layers and a CNN front
end of width 32{layout_words}, initialised at random with torch seed {seed}.
It is *not* pretrained: it only lets the workflow run without the Hugging
Face hub.
"""


def build_tiny_model(out_dir: str | Path, family: str = "wavlm", seed: int = 0,
                     stable_layer_norm: bool = False) -> Path:
    """Write a seeded tiny model of ``family`` (a model_type) and its feature extractor."""
    from transformers import Wav2Vec2FeatureExtractor

    if family not in FAMILIES:
        raise ValueError(f"model.tiny_family: {family!r} is not one of {sorted(FAMILIES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    spec = FAMILIES[family]
    model = spec.model_from_config(spec.tiny_config(stable_layer_norm)).eval()
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    model.save_pretrained(out)
    extractor.save_pretrained(out)
    (out / "README.md").write_text(TINY_README.format(
        family=family, seed=seed, layout="-stable-layer-norm" if stable_layer_norm else "",
        layout_words=", with the stable (final) layer norm" if stable_layer_norm else ""))
    return out
