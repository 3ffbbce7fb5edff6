"""Tiny models of every family: from_pretrained round trip, hidden_states equality, the engine, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechneurons.models import ModelLoadError, load_speech_model
from speechneurons.models.tiny import build_tiny_model
from speechneurons.models.units import check_site_layer


def test_round_trip_restores_the_seeded_weights(tiny_model_dir, tiny_model, tmp_path):
    from transformers import WavLMModel

    assert (tiny_model_dir / "config.json").exists()
    assert (tiny_model_dir / "preprocessor_config.json").exists()
    assert isinstance(tiny_model.model, WavLMModel)
    assert (tiny_model.num_layers, tiny_model.hidden_size, tiny_model.hop_samples) == (2, 32, 320)
    assert tiny_model.do_normalize
    # the same seed builds the same weights; another seed does not
    again = load_speech_model(str(build_tiny_model(tmp_path / "again", seed=0)))
    other = load_speech_model(str(build_tiny_model(tmp_path / "other", seed=1)))
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
    # hidden layer 2 is the output of encoder.layers[1] (the original guide's layer_idx 1)
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
    # huggingface_hub reads the variable once, on import: set what it read too (else 20 s of retries)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
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


LAYOUTS = [("wavlm", False), ("wavlm", True), ("hubert", False), ("hubert", True),
           ("wav2vec2", False), ("wav2vec2", True), ("data2vec-audio", False)]


@pytest.fixture(scope="module", params=LAYOUTS, ids=[f"{f}-{'stable' if s else 'post'}" for f, s in LAYOUTS])
def family_model(request, tmp_path_factory):
    family, stable = request.param
    folder = build_tiny_model(tmp_path_factory.mktemp("families") / family, family, seed=3,
                              stable_layer_norm=stable)
    return family, stable, load_speech_model(str(folder))


def test_every_family_reads_hf_hidden_states(family_model):
    """Hidden layer k is HF's hidden_states[k] for every family and both layer-norm layouts."""
    family, stable, model = family_model
    assert model.model.config.model_type == family and model.family.model_type == family
    assert bool(getattr(model.model.config, "do_stable_layer_norm", False)) == stable
    wave = torch.randn(2, 8_000, generator=torch.Generator().manual_seed(4))
    layers = range(model.num_layers + 1)
    with torch.no_grad():
        got = model.read(wave, [("hidden", k) for k in layers] + [("ffn", 1), ("ffn", 2)])
        full = model.model(model.normalize(wave), output_hidden_states=True)
        normed = model.model.encoder.layer_norm(full.hidden_states[-1])
    for k in layers:
        assert got[("hidden", k)].shape == (2, 24, 32)
        torch.testing.assert_close(got[("hidden", k)], full.hidden_states[k], atol=0, rtol=0)
    assert got[("ffn", 2)].shape == (2, 24, 64)
    # the installed transformers' layout: stable-layer-norm models apply the final norm to
    # last_hidden_state only, not to hidden_states[L] (transformers 4 did); pinned here
    if stable:
        torch.testing.assert_close(full.last_hidden_state, normed, atol=0, rtol=0)
        assert not torch.allclose(full.last_hidden_state, full.hidden_states[-1], atol=1e-3)
    else:
        torch.testing.assert_close(full.last_hidden_state, full.hidden_states[-1], atol=0, rtol=0)


def test_every_family_engine_equals_captum_on_hf_hidden_states(family_model):
    """The engine's attributions equal Captum FeatureAblation of HF's own hidden_states."""
    from captum.attr import FeatureAblation

    from speechneurons.ablation.engine import Units, ablate_clip
    from speechneurons.ablation.segments import make_segments

    _, _, model = family_model
    wave = torch.randn(6_400, generator=torch.Generator().manual_seed(5)) * 0.1
    segments = make_segments(len(wave), 40, 16_000, model.hop_samples)
    units = Units(sites=("hidden",), layers=(1, 2), neurons=(3, 30)).resolve(model)
    result = ablate_clip(model, wave, segments, units, baseline=torch.zeros_like(wave),
                         reduction="mean", perturbations_per_eval=4)
    for row, (layer, neuron) in enumerate([(1, 3), (1, 30), (2, 3), (2, 30)]):
        def forward(w, layer=layer, neuron=neuron):
            states = model.model(model.normalize(w), output_hidden_states=True).hidden_states
            return states[layer][..., neuron].mean(1)

        expected = FeatureAblation(forward).attribute(
            wave[None], baselines=0.0, feature_mask=segments.sample_to_segment()[None],
            perturbations_per_eval=4)[0, segments.starts]
        assert expected.abs().max() > 1e-4
        torch.testing.assert_close(result.attributions[row], expected, atol=1e-5, rtol=0)


def test_families_are_found_by_their_files_and_own_their_layer_output(family_model):
    """Each family file declares what its encoder layers return; a layer that returns another kind
    fails loudly (a transformers upgrade that changes the layout), and a knock-out repacks the
    layer's own kind."""
    from speechneurons.models.families import FAMILIES

    # every family file has a tested layout here, and every tested layout a family file
    assert sorted(FAMILIES) == sorted({f for f, _ in LAYOUTS}) and {"wavlm", "hubert"} <= set(FAMILIES)
    family, _, model = family_model
    wave = torch.randn(1, 8_000, generator=torch.Generator().manual_seed(6))
    seen = []
    layer = model.family.encoder_layers(model.model)[0]
    handle = layer.register_forward_hook(lambda m, a, out: seen.append(out))
    with torch.no_grad():
        model.model(model.normalize(wave))
    handle.remove()
    returned = seen[0]
    assert isinstance(returned, tuple) == (family == "wavlm")
    hidden = model.family.layer_hidden(returned)
    assert hidden.shape == (1, 24, 32)
    repacked = model.family.with_layer_hidden(returned, hidden + 1)
    assert type(repacked) is type(returned)
    other = (hidden, None) if family != "wavlm" else hidden
    with pytest.raises(TypeError, match=f"a {family} encoder layer returned .* the installed transformers"):
        model.family.layer_hidden(other)


def test_a_model_of_another_kind_names_the_supported_families(tmp_path):
    from transformers import BertConfig, BertModel, Wav2Vec2FeatureExtractor

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    from speechneurons.models.families import FAMILIES

    with pytest.raises(ModelLoadError, match="'bert' model; supported wav2vec2-family model types: "
                                             + ", ".join(sorted(FAMILIES))):
        load_speech_model(str(tmp_path))
