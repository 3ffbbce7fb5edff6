"""A tiny, randomly initialised WavLM for the demo and the tests.

The hub is unreachable in CI, so the demo builds this model from a seeded
``WavLMConfig`` and writes it with ``save_pretrained``; every stage then
loads it through ``from_pretrained`` exactly as it would load
``microsoft/wavlm-base-plus``. Its weights are random: it exercises the
code path, it says nothing about speech.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_README = """# tiny-wavlm (random weights, built by speechneurons)

A WavLM with hidden size 32, 2 transformer layers and a CNN front end of
width 32, initialised at random with torch seed {seed}. It is *not*
pretrained: it only lets the workflow run without the Hugging Face hub.
"""


def build_tiny_wavlm(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a seeded tiny WavLM and its feature extractor to ``out_dir``."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        num_buckets=32,
        max_bucket_distance=64,
    )
    model = WavLMModel(config).eval()
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    )
    model.save_pretrained(out)
    extractor.save_pretrained(out)
    (out / "README.md").write_text(TINY_README.format(seed=seed))
    return out
