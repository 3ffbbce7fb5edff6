"""The knock-out's forward passes: the sets of a layer run as one batch above a prefix computed once,
and equal one full forward pass per set, for every family, knocked layer and batch size."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from speechneurons.audio import load_waveform
from speechneurons.knockout.forward import knocked_activations
from speechneurons.models import SpeechModel, load_speech_model
from speechneurons.models.tiny import build_tiny_model
from speechneurons.models.units import intervene

CLIPS = pd.DataFrame({"clip_id": ["03-01-01-01-01-01-01", "03-01-04-01-02-01-03", "03-01-04-02-01-01-04"],
                      "speaker": ["1", "3", "4"],
                      "path": ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_03/03-01-04-01-02-01-03.wav",
                               "Actor_04/03-01-04-02-01-01-04.wav"]})


def unit_sets() -> pd.DataFrame:
    """Sets at hidden layers 0, 1 and 2 (of a tiny model's 32 units), for two folds of speakers."""
    rng = np.random.default_rng(0)
    rows = []
    for layer, count in ((1, 5), (0, 2), (2, 3)):
        for i in range(count):
            neurons = sorted(rng.choice(32, size=int(rng.integers(1, 6)), replace=False).tolist())
            rows.append({"set_id": f"L{layer}-{i}", "held_out": ["1", "3"] if i % 2 else ["1", "4"],
                         "site": "hidden", "layer": layer, "neurons": neurons,
                         "values": rng.normal(size=len(neurons)).round(3).tolist()})
    return pd.DataFrame(rows)


def one_pass_per_set(model: SpeechModel, root, sets: pd.DataFrame) -> dict[str, np.ndarray]:
    """The reference: a full forward pass of each (clip, set), batch 1."""
    out = {}
    for s in sets.itertuples(index=False):
        rows = []
        for clip in CLIPS.itertuples(index=False):
            if clip.speaker not in s.held_out:
                continue
            wave = torch.from_numpy(load_waveform(root / clip.path))[None]
            wanted = [("hidden", k) for k in range(s.layer, model.num_layers + 1)]
            with torch.inference_mode(), intervene(model.family, model.model, "hidden", s.layer,
                                                   [torch.tensor(s.neurons)], [torch.tensor(s.values)]):
                got = model.read(wave, wanted)
            rows.append(torch.cat([got[w][0].mean(dim=0) for w in wanted]).numpy())
        out[s.set_id] = np.vstack(rows)
    return out


@pytest.fixture(scope="module", params=[("wavlm", False), ("wavlm", True), ("hubert", False),
                                        ("data2vec-audio", False)],
                ids=["wavlm-post", "wavlm-stable", "hubert-post", "data2vec-audio-post"])
def family_model(request, tmp_path_factory) -> SpeechModel:
    family, stable = request.param
    folder = build_tiny_model(tmp_path_factory.mktemp("knockout") / family, family, seed=2,
                              stable_layer_norm=stable)
    return load_speech_model(str(folder))


def test_sets_of_a_layer_in_one_batch_equal_one_pass_per_set(family_model, demo_root):
    sets = unit_sets()
    expected = one_pass_per_set(family_model, demo_root, sets)
    for batch in (1, 2, 16):
        got = knocked_activations(family_model, CLIPS, demo_root, sets, batch=batch, progress=False)
        assert got.keys() == expected.keys()
        for set_id, rows in expected.items():
            assert got[set_id].shape == rows.shape == (2, 32 * (3 - int(set_id[1])))
            np.testing.assert_allclose(got[set_id], rows, atol=2e-6, rtol=0, err_msg=f"{set_id}, batch {batch}")
    # the knock-out changes what it should: the knocked units hold their values (pooled = value)
    s = sets.iloc[0]
    np.testing.assert_allclose(got[s["set_id"]][:, s["neurons"]], np.tile(s["values"], (2, 1)), atol=1e-6)


def test_variants_need_one_clip_and_a_hidden_site(tiny_model):
    wave = torch.zeros(2, 8_000)
    two = [torch.tensor([1]), torch.tensor([2])], [torch.tensor([0.0]), torch.tensor([1.0])]
    with pytest.raises(ValueError, match="2 variants of a batch of 2: give one clip"):
        with torch.inference_mode(), intervene(tiny_model.family, tiny_model.model, "hidden", 1, *two):
            tiny_model.read(wave, [("hidden", 1)])
    with pytest.raises(ValueError, match="variants run as one batch at a hidden layer, not at ffn layer 1"):
        with intervene(tiny_model.family, tiny_model.model, "ffn", 1, *two):
            pass


def test_out_of_memory_halves_the_knockout_batch(tiny_model, demo_root, monkeypatch, caplog):
    sets = unit_sets()
    expected = knocked_activations(tiny_model, CLIPS, demo_root, sets, batch=1, progress=False)
    read = type(tiny_model).read

    def small_memory(self, audio, sites):  # the variants appear as rows above the knocked layer
        got = read(self, audio, sites)
        if max(v.shape[0] for v in got.values()) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return got

    monkeypatch.setattr(type(tiny_model), "read", small_memory)
    with caplog.at_level(logging.WARNING):
        got = knocked_activations(tiny_model, CLIPS, demo_root, sets, batch=8, progress=False)
    assert "knock-out sets)=8; retrying with 4" in caplog.text and "retrying with 2" in caplog.text
    for set_id, rows in expected.items():
        np.testing.assert_allclose(got[set_id], rows, atol=2e-6, rtol=0)
