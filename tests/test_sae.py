"""Sparse autoencoders: a planted dictionary recovered, the quality numbers exact on known cases,
stability across seeds, early stopping on held-out frames, files that round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from speechneurons.sae_site import TopKSAE, load_sae
from speechneurons.sae import (QUALITY_COLUMNS, SAESettings, UntrainableLayer, sae_quality,
                               save_sae, save_untrained, seed_stability, train_sae, variance_explained)


def planted_frames(atoms: torch.Tensor, frames: int, active: int, seed: int, noise: float = 0.01) -> torch.Tensor:
    """Frames built from ``active`` of the unit-norm columns of ``atoms`` [width, m] each, with
    positive magnitudes (log-normal), an offset and a little noise."""
    generator = torch.Generator().manual_seed(seed)
    width, m = atoms.shape
    codes = torch.zeros(frames, m)
    chosen = torch.rand(frames, m, generator=generator).argsort(dim=1)[:, :active]
    codes.scatter_(1, chosen, torch.exp(0.3 * torch.randn(frames, active, generator=generator)))
    return codes @ atoms.t() + 0.5 + noise * torch.randn(frames, width, generator=generator)


def atoms_of(width: int, m: int, seed: int) -> torch.Tensor:
    atoms = torch.randn(width, m, generator=torch.Generator().manual_seed(seed))
    return atoms / atoms.norm(dim=0, keepdim=True)


def test_a_planted_dictionary_is_recovered_and_held_out_frames_are_explained():
    """48 unit-norm atoms in 24 dimensions (overcomplete: they interfere), 3 active per frame, as
    speaker A's frames and speaker B's: the SAE (64 latents, k = 3) trained on A's frames finds
    every atom (decoder cosine above 0.95 for each; measured 0.993 at worst) and explains above
    90 % of B's variance (measured 0.936) with three latents a frame; the 16 latents beyond the
    atoms die (measured: 13 to 16)."""
    atoms = atoms_of(24, 48, seed=1)
    train, held_out = planted_frames(atoms, 20_000, 3, seed=2), planted_frames(atoms, 4_000, 3, seed=3)
    settings = SAESettings(latents=64, k=3, learning_rate=3e-3, steps=3000, batch_frames=512, eval_every=250,
                           patience=4, dead_after=20_000, seed=0)
    sae, record = train_sae(train, held_out, settings)
    best_match = (atoms.t() @ sae.W_dec.detach()).max(dim=1).values
    assert (best_match > 0.95).all(), best_match.min()
    quality = sae_quality(sae, held_out)
    assert quality["fve"] > 0.9 and quality["l0"] == pytest.approx(3) and quality["dead_share"] <= 16 / 64
    assert record["best_step"] <= record["steps_run"] and record["held_out_fve"][-1][0] == record["steps_run"]


def test_two_seeds_find_the_same_planted_latents_and_random_ones_do_not():
    atoms = atoms_of(16, 24, seed=4)
    train, held_out = planted_frames(atoms, 12_000, 2, seed=5), planted_frames(atoms, 2_000, 2, seed=6)
    settings = SAESettings(latents=24, k=2, learning_rate=3e-3, steps=2000, batch_frames=512, eval_every=250,
                           patience=4, dead_after=10_000, seed=0)
    a, _ = train_sae(train, held_out, settings)
    b, _ = train_sae(train, held_out, SAESettings(**{**settings.__dict__, "seed": 1}))
    assert seed_stability(a, b)["stable_share"] > 0.9
    random = TopKSAE(16, 24, 2)
    assert seed_stability(a, random)["stable_share"] < 0.3


def test_quality_numbers_on_a_known_sae():
    """An identity-like SAE of 4 dimensions with 8 latents (+e_i and -e_i), k = 1, on frames that
    are one signed axis each: it reconstructs exactly (FVE 1), uses one latent a frame, and the
    latents of axis 4 never fire (dead: 2 of 8); axis 1's positive latent fires on half the frames
    (dense at 10 %)."""
    sae = TopKSAE(4, 8, 1)
    eye = torch.eye(4)
    with torch.no_grad():
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_enc.copy_(sae.W_dec.t())
        sae.b_enc.zero_()
        sae.b_pre.zero_()
    frames = torch.cat([2 * eye[0].repeat(50, 1), 3 * eye[1].repeat(20, 1), -eye[2].repeat(30, 1)])
    quality = sae_quality(sae, frames)
    assert quality["fve"] == pytest.approx(1.0) and quality["l0"] == pytest.approx(1.0)
    assert quality["dead_share"] == pytest.approx(5 / 8)  # fired: +e1, +e2, -e3
    assert quality["dense_share"] == pytest.approx(3 / 8)  # 50, 20 and 30 of 100 frames
    assert variance_explained(sae, frames) == pytest.approx(1.0)
    z = sae.encode(frames)
    assert ((z > 0).sum(dim=1) == 1).all() and torch.allclose(sae.decode(z), frames)


def test_early_stopping_keeps_the_best_held_out_state():
    """Training stops after ``patience`` evaluations on held-out frames without improvement (or at
    the last step) and returns the state of its best evaluation, not its last."""
    atoms = atoms_of(8, 12, seed=7)
    train, held_out = planted_frames(atoms, 4_000, 2, seed=8), planted_frames(atoms, 1_000, 2, seed=9)
    settings = SAESettings(latents=12, k=2, learning_rate=3e-3, steps=5000, batch_frames=256, eval_every=100,
                           patience=2, dead_after=5_000, seed=0)
    sae, record = train_sae(train, held_out, settings)
    curve = dict(record["held_out_fve"])
    assert variance_explained(sae, held_out) == pytest.approx(max(curve.values()), abs=1e-6)
    # measured: stopped at step 1,900, its best at 1,700 (FVE 0.906)
    assert record["steps_run"] < 5000 and record["steps_run"] - record["best_step"] == 2 * 100
    assert curve[record["steps_run"]] < curve[record["best_step"]]


def test_an_sae_file_round_trips_with_its_provenance(tmp_path):
    sae = TopKSAE(6, 10, 2, scale=3.5)
    path = tmp_path / "sae.safetensors"
    save_sae(sae, path, {"site": "hidden", "layer": 3, "speakers": ["1", "2"]})
    again, provenance = load_sae(path)
    x = torch.randn(5, 6)
    assert torch.equal(again(x)[0], sae(x)[0]) and float(again.scale) == 3.5
    assert provenance == {"site": "hidden", "layer": 3, "speakers": ["1", "2"]}
    assert not list(tmp_path.glob(".*partial*"))


def test_settings_errors_name_the_keys():
    with pytest.raises(ValueError, match=r"sae.k \(64\) must be above 0 and below sae.latents \(32\)"):
        SAESettings(latents=32, k=64)
    np.testing.assert_equal(SAESettings().k, 32)


def test_a_layer_is_trained_on_some_speakers_and_judged_on_the_others():
    """Eight speakers (four per sex), frames planted from one dictionary: a quarter of each sex is
    held out, no held-out speaker's frame is trained on, and the quality row says so."""
    from speechneurons.sae import held_out_speakers, train_layer

    atoms = atoms_of(16, 24, seed=10)
    clips = pd.DataFrame({"clip_id": [f"c{s}-{i}" for s in range(8) for i in range(3)],
                          "speaker": [str(s) for s in range(8) for _ in range(3)],
                          "sex": ["female" if s < 4 else "male" for s in range(8) for _ in range(3)]})
    held = held_out_speakers(clips, "sex", 0.25, seed=0)
    assert len(held) == 2 and len(held & {"0", "1", "2", "3"}) == 1
    assert held == held_out_speakers(clips, "sex", 0.25, seed=0) != held_out_speakers(clips, "sex", 0.25, seed=3)
    frames = {c: planted_frames(atoms, 200, 2, seed=i).numpy().astype(np.float32)
              for i, c in enumerate(clips["clip_id"])}
    settings = SAESettings(latents=24, k=2, learning_rate=3e-3, steps=300, batch_frames=256, eval_every=100,
                           patience=3, dead_after=10_000, seed=0)
    sae, row, record = train_layer(frames, clips, "sex", "hidden", 3, settings)
    assert list(row.columns) == QUALITY_COLUMNS and len(row) == 1
    assert row.loc[0, "train_frames"] == 18 * 200 and row.loc[0, "held_out_frames"] == 6 * 200
    assert (row.loc[0, "train_speakers"], row.loc[0, "held_out_speakers"]) == (6, 2)
    assert set(record["held_out_speakers"]) == held and not held & set(record["train_speakers"])
    assert 0 < row.loc[0, "fve"] <= 1 and 0 <= row.loc[0, "stable_share"] <= 1
    with pytest.raises(UntrainableLayer, match=r"sae: hidden layer 3 not trained: 1 speaker\(s\) with frames give"):
        train_layer({c: f for c, f in frames.items() if c.startswith("c0")}, clips, "sex", "hidden", 3, settings)


def test_a_layer_without_an_sae_says_why_in_its_file(tmp_path):
    save_untrained(tmp_path / "sae.safetensors", "sae: hidden layer 1 not trained: 1 speaker(s)", {"rule": "x"})
    with pytest.raises(ValueError, match=r"holds no SAE: sae: hidden layer 1 not trained: 1 speaker\(s\)"):
        load_sae(tmp_path / "sae.safetensors")
    from speechneurons.sae_report import plot_sae_quality, sae_findings

    empty = pd.DataFrame(columns=QUALITY_COLUMNS)
    assert sae_findings(empty) == []
    assert plot_sae_quality(empty).axes[0].texts[0].get_text().startswith("SAE quality: not drawn")
