"""Reliability checks with known answers: additive and interacting toy responses, cascading
randomisation of a tiny model, a speaker bootstrap with planted units, agreement read from files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from speechneurons.ablation.baselines import make_baseline
from speechneurons.ablation.engine import ResolvedUnits, attribute_segments, gated_forward
from speechneurons.ablation.segments import make_segments
from speechneurons.unit_arrays import write_unit_arrays
from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.ravdess import SPEC, full_design
from speechneurons.models import load_speech_model
from speechneurons.models.tiny import build_tiny_model
from speechneurons.models.families import FAMILIES
from speechneurons.reliability.agreement import (CurveSource, agreement, baseline_dependent,
                                                 compare_curves, onto_grid, setting_pairs)
from speechneurons.reliability.bootstrap import BootstrapSettings, speaker_bootstrap
from speechneurons.combination import Combination
from speechneurons.reliability.common import row_spearman, sample_units
from speechneurons.reliability.deletion import deletion_curves
from speechneurons.reliability.randomisation import (FEATURES, RandomisationSettings, cascade,
                                                     randomisation_check)
from speechneurons.stats.selection import SelectionSettings, select_units

RATE = 16_000


def clip_audio(seconds: float = 1.2, seed: int = 0) -> torch.Tensor:
    """Speech-like bursts: amplitude-modulated noise, [samples] float64."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.2 + np.abs(np.sin(2 * np.pi * 1.7 * t)) * (1 + rng.random(len(t)) * 0.1)
    return torch.from_numpy(envelope * rng.normal(size=len(t)))


def toy_attributions(toy, x: torch.Tensor, baseline: str, segment_ms: int):
    """(forward, original, attributions [units, segments], segments table) of a toy response."""
    segments = make_segments(len(x), segment_ms, RATE, 320)
    base = make_baseline(baseline, x.float(), RATE, 0, "clip").double()
    forward = gated_forward(x, base, segments.sample_to_segment(), toy)
    original, attributions, _ = attribute_segments(forward, len(segments), torch.device("cpu"), 8)
    table = pd.DataFrame({"start_s": segments.start_s, "end_s": segments.end_s})
    return forward, original, attributions, table


def additive_toy(weights: torch.Tensor, threshold: float):
    """unit u = sum_t w_u(t) relu(|x(t)| - threshold): additive over samples, so over any segments;
    a baseline quieter than the threshold contributes nothing."""
    return lambda audio: torch.relu(audio.abs() - threshold) @ weights.T


def interacting_toy(weights: torch.Tensor):
    """unit u = max_t w_u(t) |x(t)|: a segment matters only if no other holds a peak as high."""
    return lambda audio: (audio.abs()[:, None, :] * weights[None]).amax(dim=2)


def test_an_additive_response_has_no_additivity_gap_and_the_same_curves_across_baselines_and_lengths():
    x = clip_audio()
    weights = torch.from_numpy(np.random.default_rng(1).random((3, len(x))))
    toy = additive_toy(weights, threshold=0.1 * float(x.std()))
    # noise at 40 dB below the clip's power stays under the threshold: it counts like silence
    _, _, zero20, seg20 = toy_attributions(toy, x, "zero", 20)
    _, _, noise20, _ = toy_attributions(toy, x, "noise-snr40", 20)
    forward, original, zero100, seg100 = toy_attributions(toy, x, "zero", 100)
    torch.testing.assert_close(zero20, noise20, rtol=0, atol=1e-9)
    rho, peak, n = compare_curves(zero20.numpy(), seg20, noise20.numpy(), seg20)
    assert np.allclose(rho, 1.0) and (peak == 1).all() and n == len(seg20)
    # 20 ms attributions summed onto the 100 ms grid are the 100 ms attributions
    np.testing.assert_allclose(onto_grid(zero20.numpy(), seg20, seg100), zero100.numpy(), rtol=1e-9)
    rho, peak, n = compare_curves(zero20.numpy(), seg20, zero100.numpy(), seg100)
    assert np.allclose(rho, 1.0) and (peak == 1).all() and n == len(seg100)
    curves = deletion_curves(forward, original, zero100, steps=4, random_orders=3,
                             generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(curves.by_attribution, curves.summed, rtol=1e-9, atol=1e-9)
    summary = curves.summary()
    assert np.allclose(summary["additivity_gap"], 0.0, atol=1e-12)
    assert (summary["area_between"] > 0.05).all()  # attribution order beats random order
    # everything deleted: the same drop in both orders
    np.testing.assert_allclose(curves.by_attribution[:, -1], curves.at_random[:, -1], rtol=1e-9)


def test_an_interacting_response_shows_the_additivity_gap():
    x = clip_audio(seed=2)
    weights = torch.ones(2, len(x), dtype=torch.float64)
    weights[1, : len(x) // 2] = 0.5
    forward, original, attributions, _ = toy_attributions(interacting_toy(weights), x, "zero", 100)
    curves = deletion_curves(forward, original, attributions, steps=5, random_orders=2,
                             generator=torch.Generator().manual_seed(0))
    # deleting the loudest segment alone costs little (the next peak takes over); deleting all costs the max
    assert curves.by_attribution[:, -1] == pytest.approx(original.numpy())
    assert (curves.summary()["additivity_gap"] > 0.1).all()
    assert (np.abs(curves.by_attribution - curves.summed)[:, -1] > 0.5 * original.numpy()).all()


def test_agreement_reads_combinations_from_files_and_names_baseline_dependent_layers(tmp_path):
    units = pd.DataFrame({"site": ["hidden", "hidden"], "layer": np.array([1, 2], "int32"),
                          "neuron": np.array([0, 0], "int32")})
    rng = np.random.default_rng(0)
    curves = {f"c{i}": rng.normal(size=(2, 10)).astype(np.float32) for i in range(3)}
    segments = pd.DataFrame([{"clip_id": c, "segment": s, "start_s": s * 0.1, "end_s": (s + 1) * 0.1,
                              "level_db": 0.0, "loud": True} for c in curves for s in range(10)])
    segments.to_parquet(tmp_path / "segments.parquet")
    sources = {}
    for baseline, flip in (("zero", False), ("noise-snr20", True)):
        # under the second baseline layer 2's curves change sign: rho -1 and its peak moves
        arrays = {c: np.vstack([a[0], -a[1]]) if flip else a for c, a in curves.items()}
        write_unit_arrays(tmp_path / f"{baseline}.safetensors", arrays, units, dtype="float32")
        sources[Combination(baseline, 100, "mean")] = CurveSource([tmp_path / f"{baseline}.safetensors"],
                                                                  [tmp_path / "segments.parquet"])
    per_unit, per_layer, notes = agreement(sources)
    assert notes == []
    rho = per_layer.set_index("layer")["median_rho"]
    assert rho[1] == pytest.approx(1.0) and rho[2] == pytest.approx(-1.0)
    assert per_unit.set_index("layer").loc[1, "peak_agreement"] == 1.0
    assert np.allclose(per_layer["chance_peak"], 0.1) and per_layer["n_pairs"].eq(3).all()
    assert per_unit.set_index("layer").loc[2, "peak_agreement"] == 0.0
    assert baseline_dependent(per_layer)["layer"].tolist() == [2]
    # two baselines x two lengths: four pairs differ in one setting, the two diagonals are not compared
    grid = [Combination(b, s, "mean") for b in ("zero", "mean") for s in (20, 100)]
    assert sorted(p[2] for p in setting_pairs(grid)) == ["baseline", "baseline", "segment_ms", "segment_ms"]
    _, _, notes = agreement({Combination("zero", 20, "mean"): sources[Combination("zero", 100, "mean")]})
    assert "none differing in one setting" in notes[0]


def test_row_spearman_equals_scipy():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 30)), rng.normal(size=(5, 30))
    b[0] = a[0] * 2 + 1
    expected = [stats.spearmanr(a[i], b[i]).statistic for i in range(5)]
    np.testing.assert_allclose(row_spearman(a, b), expected)
    assert np.isnan(row_spearman(np.ones((1, 4)), a[:1, :4]))[0]


def test_sampled_units_spread_over_layers():
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat([1, 2, 3], 10), "neuron": np.tile(range(10), 3)})
    picked = sample_units(units, 6, seed=0)
    assert picked.groupby("layer").size().tolist() == [2, 2, 2]
    assert len(sample_units(units, 100, seed=0)) == 30


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_cascade_reinitialises_every_weight_once_top_layer_first(family, tmp_path):
    model = load_speech_model(str(build_tiny_model(tmp_path / family, seed=0, family=family)))
    steps = cascade(model)
    assert [k for k, _ in steps] == [*range(model.num_layers, 0, -1), FEATURES]
    ids = [id(p) for _, params in steps for p in params]
    assert len(ids) == len(set(ids)) == len(list(model.model.parameters()))


@pytest.mark.parametrize("family, stable", [("wavlm", False), ("wavlm", True), ("hubert", False),
                                            ("wav2vec2", True), ("data2vec-audio", False)])
def test_randomisation_from_the_cached_prefix_equals_every_step_from_the_waveform(family, stable, tmp_path,
                                                                                 demo_root):
    """Each step starts from the trained hidden state entering its first random layer (the front
    end and the trained layers skipped), for every family and layer-norm layout: the same rows,
    bit for bit, as running every step from the waveform."""
    model = load_speech_model(str(build_tiny_model(tmp_path / family, seed=0, family=family,
                                                   stable_layer_norm=stable)))
    clips = pd.DataFrame({"clip_id": ["03-01-01-01-01-01-01", "03-01-05-02-01-01-06"],
                          "path": ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_06/03-01-05-02-01-01-06.wav"]})
    units = ResolvedUnits.from_table(pd.DataFrame({"site": ["hidden", "hidden", "ffn", "hidden", "ffn"],
                                                   "layer": [0, 1, 1, 2, 2], "neuron": [3, 5, 2, 1, 7]}), model)
    combo, settings = Combination("zero", 100, "mean"), RandomisationSettings(threshold=0.8)
    reference = randomisation_check(model, clips, demo_root, units, combo, settings, batch=4, progress=False,
                                    reuse_prefix=False)
    started = randomisation_check(model, clips, demo_root, units, combo, settings, batch=4, progress=False)
    pd.testing.assert_frame_equal(started[0], reference[0], check_exact=True)
    pd.testing.assert_frame_equal(started[1], reference[1], check_exact=True)
    assert set(started[0]["randomised_from"]) == {2, 1, FEATURES}
    assert (started[0].loc[started[0]["reached"], "max_abs_change"] > 0).all()


def test_randomisation_changes_only_units_at_or_above_the_randomised_layers(tiny_model, demo_root):
    clips = pd.DataFrame({"clip_id": ["03-01-01-01-01-01-01"],
                          "path": ["Actor_01/03-01-01-01-01-01-01.wav"]})
    units = ResolvedUnits.from_table(pd.DataFrame({"site": ["hidden", "hidden", "ffn"], "layer": [1, 2, 2],
                                                   "neuron": [3, 5, 7]}), tiny_model)
    before = [p.detach().clone() for p in tiny_model.model.parameters()]
    long, flags = randomisation_check(tiny_model, clips, demo_root, units, Combination("zero", 100, "mean"),
                                      RandomisationSettings(threshold=0.8), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_model.model.parameters()))  # a copy was changed
    by = long.set_index(["randomised_from", "site", "layer"])
    # layer 2 random: hidden 1 is not reached and is exactly unchanged; hidden 2 and ffn 2 change
    assert by.loc[(2, "hidden", 1), "max_abs_change"] == 0 and by.loc[(2, "hidden", 1), "rho"] == pytest.approx(1)
    assert not by.loc[(2, "hidden", 1), "reached"]
    assert by.loc[(2, "hidden", 2), "max_abs_change"] > 0 and by.loc[(2, "ffn", 2), "max_abs_change"] > 0
    # every weight random: every attribution changes, and their ranks no longer follow the trained model's
    assert (long[long["randomised_from"] == FEATURES]["max_abs_change"] > 0).all()
    assert (flags["rho_all"] < 0.8).all() and not flags["flagged"].any()
    assert flags.set_index("layer").loc[1, "rho_own_layer"] == pytest.approx(
        by.loc[(1, "hidden", 1), "rho"])


def test_bootstrap_keeps_planted_units_and_not_noise():
    meta = full_design(actors=range(1, 13), emotions=["neutral", "happy", "sad", "angry"])
    rng = np.random.default_rng(4)
    n = len(meta)
    speaker = meta["speaker"].astype(int).to_numpy()
    emotion = pd.get_dummies(meta["emotion"])[["neutral", "happy", "sad", "angry"]].to_numpy(float)
    # the realistic null: speaker intercepts and speaker x emotion slopes, no effect on average
    def null_block(width):
        return (rng.normal(size=(n, width)) + rng.normal(size=(13, width))[speaker]
                + np.einsum("ce,ceu->cu", emotion, rng.normal(0, 0.5, size=(13, 4, width))[speaker]))
    planted, noise = null_block(30), null_block(30)
    planted[:, 0] += 4.0 * emotion[:, 1]  # two strong "happy" units
    planted[:, 1] += 3.0 * emotion[:, 1]
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat([1, 2], 30).astype("int32"),
                          "neuron": np.tile(np.arange(30), 2).astype("int32")})
    matrix = ActivationMatrix(meta["clip_id"].tolist(), units, np.hstack([planted, noise]).astype(np.float32))
    selectivity = pd.DataFrame(columns=["site", "layer", "neuron", "factor", "q_speaker", "q_perm", "selective"])
    selected, _, _ = select_units(matrix, meta, selectivity, SPEC, SelectionSettings(top_k=2, random_controls=0,
                                                                                folds=2, require_selective=False))
    per_unit, per_layer, notes = speaker_bootstrap(matrix, meta, selected, SPEC,
                                                   BootstrapSettings(resamples=100, top_k=2, seed=0),
                                                   progress=False)
    assert notes == []
    happy = per_layer.set_index(["layer", "emotion"])
    assert happy.loc[(1, "happy"), "mean_jaccard"] > 0.95
    study = per_unit[per_unit["fold"] == -1]
    assert study[(study["layer"] == 1) & (study["emotion"] == "happy")]["kept"].min() > 0.95
    assert per_layer[per_layer["layer"] == 2]["mean_jaccard"].mean() < 0.5
    assert study["effect_low"].isna().all()  # chosen on every speaker: no interval
    # each fold's happy units, measured on the other fold's speakers: planted +4 and +3
    cross = per_unit[(per_unit["fold"] >= 0) & (per_unit["layer"] == 1) & (per_unit["emotion"] == "happy")]
    assert len(cross) == 4 and (cross["n_speakers_tested"] == 6).all()
    strong = cross[cross["neuron"] == 0]
    assert (strong["effect_low"] < strong["effect"]).all() and (strong["effect"] < strong["effect_high"]).all()
    assert (strong["effect_low"] > 2.0).all() and (strong["effect"] - 4.0).abs().max() < 1.0


def resampled_clips(meta: pd.DataFrame, drawn: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """The bootstrap before issue 22: the drawn speakers' clips gathered, each draw a speaker of its own."""
    rows = [np.flatnonzero(meta["speaker"].to_numpy() == s) for s in drawn]
    names = np.concatenate([np.full(len(r), f"{s}#{i}", dtype=object) for i, (s, r) in enumerate(zip(drawn, rows))])
    rows = np.concatenate(rows)
    return rows, meta.iloc[rows].reset_index(drop=True).assign(speaker=names)


@pytest.mark.parametrize("target", ["emotion", "gender"])
def test_a_resample_s_scores_from_per_speaker_parts_equal_ranking_its_clips(target):
    """One gather of per-speaker parts per resample gives ranking_scores of the resample's clips
    (cells adjusted for intensity and statement inside each speaker; a speaker drawn twice is two)."""
    import dataclasses

    from speechneurons.reliability.bootstrap import resample_speakers
    from speechneurons.stats.selection import SpeakerParts, ranking_scores

    spec = dataclasses.replace(SPEC, target=target, group=None if target == "gender" else SPEC.group)
    meta = full_design(actors=range(1, 11), emotions=["neutral", "happy", "sad", "angry"])
    meta = meta[~((meta["actor"] == 3) & (meta["emotion"] == "sad"))].reset_index(drop=True)  # unbalanced
    rng = np.random.default_rng(9)
    x = rng.normal(size=(len(meta), 7)) + rng.normal(size=(11, 7))[meta["speaker"].astype(int)]
    x[:, 0] += 2.0 * (meta["emotion"] == "happy") + 1.0 * (meta["gender"] == "female")
    levels = [lv for lv in spec.levels(target) if lv in set(meta[target])]
    parts = SpeakerParts.of(x, meta, spec, levels)
    for _ in range(8):
        drawn = resample_speakers(meta, spec, rng)
        rows, sample = resampled_clips(meta, drawn)
        present = [lv for lv in levels if lv in set(sample[target])]
        expected, speakers = ranking_scores(x[rows], sample, spec, present)
        got, counts = parts.resampled(np.searchsorted(parts.speakers, drawn))
        index = [levels.index(lv) for lv in present]
        np.testing.assert_array_equal(counts[index], speakers)
        np.testing.assert_allclose(got[index], expected, rtol=1e-10, atol=1e-12)


def test_the_bootstrap_equals_the_one_that_ranked_each_resample_s_clips():
    """speaker_bootstrap against its loop before issue 22 (ranking_scores on every resample's
    gathered clips), including a level that too few drawn speakers hold (the clip-level fallback)."""
    from speechneurons.reliability.bootstrap import resample_speakers
    from speechneurons.stats.selection import ranking_scores

    meta = full_design(actors=range(1, 9), emotions=["neutral", "happy", "sad", "angry"])
    meta = meta[~((meta["emotion"] == "sad") & ~meta["actor"].isin([1, 2, 4]))].reset_index(drop=True)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(len(meta), 12)) + rng.normal(size=(9, 12))[meta["speaker"].astype(int)]
    x[:, :3] += 1.5 * (meta["emotion"] == "happy").to_numpy()[:, None]
    units = pd.DataFrame({"site": "hidden", "layer": np.repeat([1, 2], 6).astype("int32"),
                          "neuron": np.tile(np.arange(6), 2).astype("int32")})
    matrix = ActivationMatrix(meta["clip_id"].tolist(), units, x.astype(np.float32))
    levels = ["neutral", "happy", "sad", "angry"]
    selected = pd.DataFrame([{"site": "hidden", "layer": layer, "neuron": n, "emotion": lv, "reason": "top_k"}
                             for layer in (1, 2) for lv in levels for n in (0, 1)])
    settings = BootstrapSettings(resamples=30, top_k=2, seed=3)
    _, per_layer, _ = speaker_bootstrap(matrix, meta, selected, SPEC, settings, progress=False)

    draw = np.random.default_rng(3)
    jaccard = {(layer, lv): [] for layer in (1, 2) for lv in levels}
    for _ in range(30):
        rows, sample = resampled_clips(meta, resample_speakers(meta, SPEC, draw))
        present = [lv for lv in levels if lv in set(sample["emotion"])]
        scores, _ = ranking_scores(matrix.values[rows], sample, SPEC, present)
        for layer in (1, 2):
            for i, lv in enumerate(present):
                best = set(np.argsort(-scores[i, 6 * (layer - 1):6 * layer], kind="stable")[:2])
                jaccard[(layer, lv)].append(len(best & {0, 1}) / len(best | {0, 1}))
    got = per_layer.set_index(["layer", "emotion"])
    for key, values in jaccard.items():
        assert got.loc[key, "resamples"] == len(values), key
        assert got.loc[key, "mean_jaccard"] == pytest.approx(np.mean(values), abs=1e-12), (key, values)
    assert got.loc[(1, "sad"), "resamples"] < 30  # resamples without a sad speaker


def test_deletion_runs_every_distinct_gate_row_once_and_equals_running_every_row():
    """The curves against the plain evaluation of every (unit or order, step) row; no row twice."""
    x = clip_audio(seed=3)
    weights = torch.from_numpy(np.random.default_rng(2).random((3, len(x))))
    forward, original, attributions, _ = toy_attributions(interacting_toy(weights), x, "zero", 100)
    rows_seen = []

    def counting(gates):
        rows_seen.append(gates.clone())
        return forward(gates)

    curves = deletion_curves(counting, original, attributions, steps=4, random_orders=2,
                             generator=torch.Generator().manual_seed(7), batch=5)
    seen = torch.cat(rows_seen)  # at most 3 units x 3 inner steps + 2 orders x 3 + all deleted
    assert len(torch.unique(seen, dim=0)) == len(seen) <= 3 * 3 + 2 * 3 + 1
    assert not (seen == 1).all(dim=1).any()  # nothing deleted: the original values
    segments = attributions.shape[1]
    counts = np.round(np.linspace(0, 1, 5) * segments).astype(int)
    order = torch.argsort(attributions, dim=1, descending=True, stable=True)
    generator = torch.Generator().manual_seed(7)
    perms = [torch.randperm(segments, generator=generator) for _ in range(2)]
    for u in range(3):
        for k, count in enumerate(counts):
            gates = torch.ones(1, segments, dtype=torch.float64)
            gates[0, order[u, :count]] = 0
            expected = float(original[u] - forward(gates)[0, u])
            assert curves.by_attribution[u, k] == pytest.approx(expected, abs=1e-9)
            drops = []
            for perm in perms:
                gates = torch.ones(1, segments, dtype=torch.float64)
                gates[0, perm[:count]] = 0
                drops.append(float(original[u] - forward(gates)[0, u]))
            assert curves.at_random[u, k] == pytest.approx(np.mean(drops), abs=1e-9)
