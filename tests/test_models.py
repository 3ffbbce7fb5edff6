"""The tiny WavLM: save_pretrained -> from_pretrained round trip, normalisation, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechneurons.models import ModelLoadError, build_tiny_wavlm, load_speech_model
from speechneurons.models.units import check_site_layer


def test_round_trip_restores_the_seeded_weights(tiny_model_dir, tiny_model, tmp_path):
    from transformers import WavLMModel

    assert (tiny_model_dir / "config.json").exists()
    assert (tiny_model_dir / "preprocessor_config.json").exists()
    assert isinstance(tiny_model.model, WavLMModel)
    assert (tiny_model.num_layers, tiny_model.hidden_size, tiny_model.hop_samples) == (2, 32, 320)
    assert tiny_model.do_normalize
    # the same seed builds the same weights; another seed does not
    again = load_speech_model(str(build_tiny_wavlm(tmp_path / "again", seed=0)))
    other = load_speech_model(str(build_tiny_wavlm(tmp_path / "other", seed=1)))
    loaded = tiny_model.model.state_dict()
    assert loaded.keys() == again.model.state_dict().keys()
    for name, tensor in again.model.state_dict().items():
        assert torch.equal(tensor, loaded[name]), name
    assert not all(
        torch.equal(t, loaded[n]) for n, t in other.model.state_dict().items() if t.is_floating_point()
    )


def test_hidden_states_follow_the_layer_numbering(tiny_model):
    wave = torch.randn(1, 16_000, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        states = tiny_model.hidden_states(wave, [0, 1, 2])
        layer_out = {}

        def keep(module, inputs, output):
            layer_out["h"] = output[0]

        hook = tiny_model.model.encoder.layers[1].register_forward_hook(keep)
        tiny_model.hidden_states(wave, [2])
        hook.remove()
    assert [tuple(s.shape) for s in states] == [(1, 49, 32)] * 3
    # hidden layer 2 is the output of encoder.layers[1] (the seed's layer_idx 1)
    assert torch.equal(states[2], layer_out["h"])


def test_normalize_equals_the_feature_extractor(tiny_model_dir, tiny_model):
    from transformers import AutoFeatureExtractor

    extractor = AutoFeatureExtractor.from_pretrained(str(tiny_model_dir))
    wave = (np.random.default_rng(0).normal(size=24_000) * 0.2 + 0.05).astype(np.float32)
    expected = extractor(wave, sampling_rate=16_000, return_tensors="pt").input_values
    got = tiny_model.normalize(torch.from_numpy(wave)[None])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_unreachable_hub_name_says_which_key(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match=r"model.name_or_path='microsoft/wavlm-base-plus'.*HF_HUB_OFFLINE=1"):
        load_speech_model("microsoft/wavlm-base-plus", revision="main")


def test_reader_captures_both_sites(tiny_model):
    wave = torch.randn(2, 8_000, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        got = tiny_model.read(wave, [("ffn", 2), ("hidden", 0), ("hidden", 2)])
        full = tiny_model.model(tiny_model.normalize(wave), output_hidden_states=True)
    assert got[("ffn", 2)].shape == (2, 24, 64)
    assert (got[("ffn", 2)] >= -0.2).all()  # after GELU
    assert torch.equal(got[("hidden", 0)], full.hidden_states[0])
    assert torch.equal(got[("hidden", 2)], full.hidden_states[2])
    with pytest.raises(ValueError, match="ffn layer 0 does not exist"):
        check_site_layer(tiny_model.model.config, "ffn", 0)
