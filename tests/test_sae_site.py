"""The ``sae`` site: latents read inside the forward pass equal the SAE's code of HF's own hidden
states, the ablation engine on them equals Captum, and a knock-out changes only the chosen
latents (the reconstruction error kept)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import FeatureAblation

from speechneurons.ablation.engine import Units, ablate_clip
from speechneurons.ablation.segments import make_segments
from speechneurons.sae_site import TopKSAE, attach_saes
from speechneurons.sae import save_sae, save_untrained

LAYER = 1


def seeded_sae(width: int, latents: int = 48, k: int = 6, seed: int = 0) -> TopKSAE:
    torch.manual_seed(seed)
    sae = TopKSAE(width, latents, k, scale=1.7)
    with torch.no_grad():  # an encoder that is not the decoder's transpose, and biases
        sae.W_enc.add_(0.3 * torch.randn_like(sae.W_enc))
        sae.b_enc.normal_(0, 0.1)
        sae.b_pre.normal_(0, 0.1)
    return sae.eval()


@pytest.fixture()
def sae_model(tiny_model, tmp_path):
    """The tiny WavLM (a copy: the session's model stays without SAEs) with an SAE at hidden 1
    and an untrained file at hidden 2."""
    model = dataclasses.replace(tiny_model, saes={})
    save_sae(seeded_sae(model.width("hidden")), tmp_path / "l1.safetensors", {"test": True})
    save_untrained(tmp_path / "l2.safetensors", "no held-out speaker", {})
    attach_saes(model, "hidden", [1, 2], [tmp_path / "l1.safetensors", tmp_path / "l2.safetensors"])
    return model


@pytest.fixture(scope="module")
def wave() -> torch.Tensor:
    return torch.randn(6_400, generator=torch.Generator().manual_seed(3)) * 0.1


def test_latents_are_the_code_of_hf_hidden_states(sae_model, wave):
    assert sae_model.sae_layers() == [1]  # the untrained layer has no units
    assert sae_model.width("sae") == 48
    with torch.no_grad():
        got = sae_model.read(wave[None], [("sae", LAYER), ("hidden", 2)])
        states = sae_model.model(sae_model.normalize(wave[None]), output_hidden_states=True).hidden_states
    assert list(got) == [("sae", LAYER), ("hidden", 2)]
    expected = sae_model.saes[LAYER].encode(states[LAYER])
    torch.testing.assert_close(got[("sae", LAYER)], expected, atol=1e-6, rtol=0)
    assert ((got[("sae", LAYER)] != 0).sum(-1) <= 6).all() and (got[("sae", LAYER)] > 0).any()
    with pytest.raises(ValueError, match="sae layer 2 has no trained SAE"):
        sae_model.read(wave[None], [("sae", 2)])


def test_engine_on_the_sae_site_equals_captum_on_encoded_hidden_states(sae_model, wave):
    segments = make_segments(len(wave), 40, 16_000, sae_model.hop_samples)
    units = Units(sites=("sae",)).resolve(sae_model)
    assert len(units) == 48 and units.sites == [("sae", LAYER)]
    result = ablate_clip(sae_model, wave, segments, units, baseline=torch.zeros_like(wave), reduction="mean",
                         perturbations_per_eval=4)
    sae = sae_model.saes[LAYER]

    def forward(w):
        states = sae_model.model(sae_model.normalize(w), output_hidden_states=True).hidden_states
        return sae.encode(states[LAYER]).mean(1)  # [batch, latents]

    with torch.no_grad():
        expected = torch.stack([
            FeatureAblation(forward).attribute(wave[None], baselines=0.0, target=j,
                                               feature_mask=segments.sample_to_segment()[None],
                                               perturbations_per_eval=4)[0, segments.starts]
            for j in range(48)])
    assert (expected.abs().amax(1) > 1e-3).sum() >= 10  # many latents respond: not a test of zeros
    torch.testing.assert_close(result.attributions, expected, atol=1e-5, rtol=0)
    one_at_a_time = ablate_clip(sae_model, wave, segments, units, baseline=torch.zeros_like(wave),
                                reduction="mean", perturbations_per_eval=1)
    torch.testing.assert_close(one_at_a_time.attributions, result.attributions, atol=1e-5, rtol=0)


def test_a_latent_knock_out_keeps_the_error_and_every_other_latent(sae_model, wave):
    sae = sae_model.saes[LAYER]
    chosen, values = torch.tensor([2, 7, 30]), torch.tensor([0.0, 0.5, 1.25])
    with torch.no_grad():
        before = sae_model.read(wave[None], [("hidden", LAYER)])[("hidden", LAYER)]
        with sae_model.intervene("sae", LAYER, [chosen], [values]):
            after = sae_model.read(wave[None], [("hidden", LAYER), ("hidden", 2)])
        code = sae.encode(before)
    knocked = code.clone()
    knocked[..., chosen] = values
    # the layer is the decoded knocked code plus the SAE's own error on this frame
    torch.testing.assert_close(after[("hidden", LAYER)], sae.decode(knocked) + (before - sae.decode(code)),
                               atol=1e-5, rtol=0)
    # the change lies along the chosen latents' decoder columns only
    change = (after[("hidden", LAYER)] - before) / sae.scale
    along = (values - code[..., chosen]) @ sae.W_dec[:, chosen].t()
    torch.testing.assert_close(change, along, atol=1e-5, rtol=0)
    assert change.abs().max() > 1e-2
    # deeper layers compute from the knocked-out layer
    with torch.no_grad():
        plain = sae_model.read(wave[None], [("hidden", 2)])[("hidden", 2)]
    assert not torch.allclose(after[("hidden", 2)], plain, atol=1e-4)


def test_knock_out_variants_in_one_batch_equal_one_at_a_time(sae_model, wave):
    sets = [(torch.tensor([1, 4]), torch.tensor([0.0, 0.0])), (torch.tensor([9]), torch.tensor([2.0]))]
    with torch.no_grad():
        with sae_model.intervene("sae", LAYER, [s[0] for s in sets], [s[1] for s in sets]):
            batch = sae_model.read(wave[None], [("hidden", 2)])[("hidden", 2)]
        for row, (neurons, values) in enumerate(sets):
            with sae_model.intervene("sae", LAYER, [neurons], [values]):
                alone = sae_model.read(wave[None], [("hidden", 2)])[("hidden", 2)]
            torch.testing.assert_close(batch[row:row + 1], alone, atol=1e-5, rtol=0)


def test_the_cache_holds_pooled_latents(sae_model, demo_root):
    from speechneurons.activations import pooled_activations
    from speechneurons.audio import load_waveform

    clips = pd.DataFrame({"clip_id": ["a"], "path": ["Actor_04/03-01-04-02-01-01-04.wav"]})
    shard = pooled_activations(sae_model, clips, demo_root, sites=("hidden", "sae"), progress=False)
    rows = shard.pooled[shard.pooled["site"] == "sae"]
    assert rows["layer"].unique().tolist() == [LAYER] and len(rows) == 48
    wave = torch.from_numpy(load_waveform(demo_root / clips["path"][0]))
    with torch.no_grad():
        states = sae_model.model(sae_model.normalize(wave[None]), output_hidden_states=True).hidden_states
        code = sae_model.saes[LAYER].encode(states[LAYER])[0]
    np.testing.assert_allclose(rows["mean"].to_numpy(), code.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(rows["max"].to_numpy(), code.amax(0).numpy(), atol=1e-5)


def test_the_latent_shards_pool_the_code_of_the_stored_frames(sae_model, demo_root, tmp_path):
    """Rule sae_activations: the latents of the cache come from the frames sae_frames stored
    (float32, what the SAE learned from), no forward pass: equal to the pooled code of HF
    hidden_states (1e-5), one row per latent of the trained layer only, and an empty table when
    no layer has an SAE."""
    from speechneurons.activations import layer_frames
    from speechneurons.audio import load_waveform
    from speechneurons.sae_latents import pooled_latents
    from speechneurons.unit_arrays import write_unit_arrays

    clips = pd.DataFrame({"clip_id": ["a", "b"], "path": ["Actor_04/03-01-04-02-01-01-04.wav",
                                                         "Actor_01/03-01-01-01-01-01-01.wav"]})
    frames, units, failed = layer_frames(sae_model, clips, demo_root, "hidden", [1, 2], progress=False)
    write_unit_arrays(tmp_path / "frames.safetensors", frames, units, dtype="float32")  # as sae_frames
    saes = [tmp_path / "l1.safetensors", tmp_path / "l2.safetensors"]
    pooled = pooled_latents(tmp_path / "frames.safetensors", "hidden", [1, 2], saes, progress=False)
    assert failed.empty and pooled["clip_id"].tolist() == ["a"] * 48 + ["b"] * 48
    assert set(pooled["site"]) == {"sae"} and set(pooled["layer"]) == {LAYER}
    assert pooled["neuron"].tolist() == list(range(48)) * 2
    for clip in clips.itertuples():
        wave = torch.from_numpy(load_waveform(demo_root / clip.path))
        with torch.no_grad():
            state = sae_model.model(sae_model.normalize(wave[None]), output_hidden_states=True).hidden_states[LAYER][0]
            code = sae_model.saes[LAYER].encode(state)
        rows = pooled[pooled["clip_id"] == clip.clip_id]
        assert (code > 0).sum() > 20
        np.testing.assert_allclose(rows["mean"].to_numpy(), code.mean(0).numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(rows["max"].to_numpy(), code.amax(0).numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(rows["std"].to_numpy(), code.std(0, unbiased=False).numpy(), atol=1e-5, rtol=0)
    untrained = pooled_latents(tmp_path / "frames.safetensors", "hidden", [2], saes[1:], progress=False)
    assert untrained.empty and list(untrained.columns) == ["clip_id", "site", "layer", "neuron", "mean", "std", "max"]
    save_sae(seeded_sae(64), tmp_path / "wide.safetensors", {})
    with pytest.raises(ValueError, match="32 units of hidden layer 1, but its SAE reads 64-wide frames"):
        pooled_latents(tmp_path / "frames.safetensors", "hidden", [1], [tmp_path / "wide.safetensors"])


def test_an_sae_of_other_frames_names_its_file(tiny_model, tmp_path):
    model = dataclasses.replace(tiny_model, saes={})
    save_sae(seeded_sae(model.width("ffn")), tmp_path / "ffn.safetensors", {})
    with pytest.raises(ValueError, match=r"ffn.safetensors: an SAE of 64-wide frames, but hidden layer 1"):
        attach_saes(model, "hidden", [1], [tmp_path / "ffn.safetensors"])


def test_latent_sets_in_one_batch_equal_one_pass_per_set(sae_model, demo_root):
    from speechneurons.audio import load_waveform
    from speechneurons.knockout.forward import knocked_activations

    clips = pd.DataFrame({"clip_id": ["a", "b"], "speaker": ["1", "4"],
                          "path": ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_04/03-01-04-02-01-01-04.wav"]})
    sets = pd.DataFrame({"set_id": ["SAE1-0", "SAE1-1", "L1-0"], "held_out": [["1", "4"], ["4"], ["1", "4"]],
                         "site": ["sae", "sae", "hidden"], "layer": [1, 1, 1],
                         "neurons": [[2, 7], [30], [2, 7]], "values": [[0.0, 0.4], [1.0], [0.0, 0.4]]})
    expected = {}
    for s in sets.itertuples(index=False):
        rows = []
        for clip in clips[clips["speaker"].isin(s.held_out)].itertuples(index=False):
            wave = torch.from_numpy(load_waveform(demo_root / clip.path))[None]
            with torch.inference_mode(), sae_model.intervene(s.site, s.layer, [torch.tensor(s.neurons)],
                                                             [torch.tensor(s.values)]):
                got = sae_model.read(wave, [("hidden", 1), ("hidden", 2)])
            rows.append(torch.cat([got[("hidden", k)][0].mean(0) for k in (1, 2)]).numpy())
        expected[s.set_id] = np.vstack(rows)
    for batch in (1, 4):
        got = knocked_activations(sae_model, clips, demo_root, sets, batch=batch, progress=False)
        for set_id, rows in expected.items():
            np.testing.assert_allclose(got[set_id], rows, atol=2e-6, rtol=0, err_msg=f"{set_id}, batch {batch}")
    # latents and the hidden units of the same indices are different knock-outs
    assert np.abs(got["SAE1-0"] - got["L1-0"][:, :]).max() > 1e-3
