"""The ablation engine equals Captum's NeuronFeatureAblation, unit by unit."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import NeuronFeatureAblation

from speechneurons.ablation.baselines import make_baseline
from speechneurons.ablation.engine import ResolvedUnits, Units, ablate_clip
from speechneurons.ablation.run import AblationSettings, ablate_clips
from speechneurons.combination import Combination
from speechneurons.ablation.segments import Segments, make_segments, segment_levels_db
from speechneurons.ablation.summary import SUMMARY_SCHEMA, summarise
from speechneurons.schemas import SEGMENT_SCHEMA
from speechneurons.audio import load_waveform
from speechneurons.shards import shard_clips

CLIP = "Actor_04/03-01-04-02-01-01-04.wav"
# 1.1875 s of speech from 0.9 s on: 60 segments of 20 ms, the last one 60 samples long
START, LENGTH = 14_400, 19_000


def quiet_baseline(waveform, sample_rate, generator):
    """A user-supplied baseline (``fn-test_ablation.quiet_baseline``): the clip at -20 dB."""
    return 0.1 * waveform


@pytest.fixture(scope="module")
def speech(demo_root) -> torch.Tensor:
    wave = load_waveform(demo_root / CLIP)
    return torch.from_numpy(wave[START : START + LENGTH].copy())


def captum_reference(model, wave, segments, site, layer, neuron, baseline, reduction):
    """The original guide's method: Captum NeuronFeatureAblation for one neuron, segment feature mask."""
    frames = {"mean": lambda h: h.mean(1), "max": lambda h: h.max(1).values,
              "frame-10": lambda h: h[:, 10], "time-0.5": lambda h: h[:, 25]}[reduction]
    encoder = model.model.encoder.layers
    if site == "hidden" and layer == 0:  # what enters the first transformer layer
        module, to_input = encoder[0], True
        selector = lambda h: frames(h[..., neuron])  # noqa: E731
    elif site == "hidden":  # the output of encoder.layers[k - 1]: (hidden, position_bias)
        module, to_input = encoder[layer - 1], False
        selector = lambda out: frames(out[0][..., neuron])  # noqa: E731
    else:  # feed-forward units after the activation
        module, to_input = encoder[layer - 1].feed_forward.intermediate_act_fn, False
        selector = lambda h: frames(h[..., neuron])  # noqa: E731
    ablator = NeuronFeatureAblation(lambda w: model.model(model.normalize(w)), module)
    attr = ablator.attribute(
        wave[None],
        neuron_selector=selector,
        baselines=baseline[None],
        feature_mask=segments.sample_to_segment()[None],
        attribute_to_neuron_input=to_input,
        perturbations_per_eval=8,
    )
    return attr[0, segments.starts]  # every sample of a segment carries its attribution


CASES = [
    ("hidden", 0, 3, "zero", "mean"),
    ("hidden", 1, 17, "zero", "mean"),
    ("hidden", 2, 31, "zero", "mean"),
    ("hidden", 2, 5, "mean", "mean"),
    ("hidden", 1, 0, "zero", "max"),
    ("hidden", 0, 30, "mean", "max"),
    ("ffn", 1, 40, "zero", "mean"),
    ("ffn", 2, 7, "noise-snr20", "max"),
    ("hidden", 2, 12, "lowpass-1000", "frame-10"),
    ("ffn", 2, 63, "fn-test_ablation.quiet_baseline", "time-0.5"),
]


@pytest.fixture(scope="module")
def engine_runs(tiny_model, speech):
    """One engine sweep per (baseline, reduction), all units of both sites."""
    segments = make_segments(LENGTH, 20, 16_000, tiny_model.hop_samples)
    units = Units(sites=("hidden", "ffn")).resolve(tiny_model)
    runs = {}
    for baseline, reduction in {(c[3], c[4]) for c in CASES}:
        base = make_baseline(baseline, speech, 16_000, seed=0, clip_id="clip")
        runs[baseline, reduction] = (base, ablate_clip(tiny_model, speech, segments, units,
                                                       baseline=base, reduction=reduction))
    return segments, units, runs


@pytest.mark.parametrize("site, layer, neuron, baseline, reduction", CASES)
def test_engine_equals_captum_neuron_feature_ablation(
    tiny_model, speech, engine_runs, site, layer, neuron, baseline, reduction
):
    segments, units, runs = engine_runs
    base, result = runs[baseline, reduction]
    assert result.attributions.shape == (3 * 32 + 2 * 64, 60)
    table = units.table()
    row = table.index[(table.site == site) & (table.layer == layer) & (table.neuron == neuron)]
    expected = captum_reference(tiny_model, speech, segments, site, layer, neuron, base, reduction)
    assert expected.abs().max() > 1e-3  # the comparison is not between zeros
    torch.testing.assert_close(result.attributions[row[0]], expected, atol=1e-5, rtol=0)


def test_results_do_not_depend_on_perturbations_per_eval(tiny_model, speech):
    segments = make_segments(LENGTH, 40, 16_000, tiny_model.hop_samples)
    units = Units(sites=("hidden", "ffn"), layers=(1, 2), neurons=(4, 9)).resolve(tiny_model)
    runs = [
        ablate_clip(tiny_model, speech, segments, units, perturbations_per_eval=n).attributions
        for n in (1, 7, 64)
    ]
    assert runs[0].shape == (8, 30)
    for other in runs[1:]:
        torch.testing.assert_close(other, runs[0], atol=1e-5, rtol=0)


def test_deeper_layers_never_run(tiny_model, speech):
    layers = tiny_model.model.encoder.layers
    calls = {"layer 0": 0, "layer 1": 0, "ffn of layer 1": 0}
    hooks = [
        layers[0].register_forward_hook(lambda *a: calls.__setitem__("layer 0", calls["layer 0"] + 1)),
        layers[1].register_forward_hook(lambda *a: calls.__setitem__("layer 1", calls["layer 1"] + 1)),
        layers[1].feed_forward.register_forward_pre_hook(  # fires when the feed-forward starts
            lambda *a: calls.__setitem__("ffn of layer 1", calls["ffn of layer 1"] + 1)),
    ]
    segments = make_segments(LENGTH, 200, 16_000, tiny_model.hop_samples)
    try:
        # hidden layer 1 is the output of encoder.layers[0]: encoder.layers[1] never runs
        units = Units(sites=("hidden",), layers=(1,), neurons=(0,)).resolve(tiny_model)
        ablate_clip(tiny_model, speech, segments, units, perturbations_per_eval=4)
        assert calls["layer 0"] > 0 and calls["layer 1"] == 0 and calls["ffn of layer 1"] == 0
        # ffn layer 2 sits inside encoder.layers[1]: its feed-forward runs, the layer never returns
        units = Units(sites=("ffn",), layers=(2,), neurons=(0,)).resolve(tiny_model)
        ablate_clip(tiny_model, speech, segments, units, perturbations_per_eval=4)
        assert calls["ffn of layer 1"] > 0 and calls["layer 1"] == 0
    finally:
        for hook in hooks:
            hook.remove()


def test_out_of_memory_halves_the_batch_and_retries(tiny_model, speech, monkeypatch, caplog):
    segments = make_segments(LENGTH, 40, 16_000, tiny_model.hop_samples)
    units = Units(layers=(2,), neurons=(1, 2)).resolve(tiny_model)
    expected = ablate_clip(tiny_model, speech, segments, units, perturbations_per_eval=4).attributions
    read = type(tiny_model).read

    def small_memory(self, audio, sites):
        if audio.shape[0] > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return read(self, audio, sites)

    monkeypatch.setattr(type(tiny_model), "read", small_memory)
    with caplog.at_level(logging.WARNING):
        result = ablate_clip(tiny_model, speech, segments, units, perturbations_per_eval=16)
    assert result.perturbations_per_eval == 4
    assert "retrying with 8" in caplog.text and "retrying with 4" in caplog.text
    torch.testing.assert_close(result.attributions, expected, atol=1e-6, rtol=0)

    def broken(self, audio, sites):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(type(tiny_model), "read", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        ablate_clip(tiny_model, speech, segments, units)


def test_units_out_of_range_name_the_key(tiny_model):
    with pytest.raises(ValueError, match=r"neurons \[32\] out of range for hidden"):
        Units(layers=(1,), neurons=(0, 32)).resolve(tiny_model)
    with pytest.raises(ValueError, match="hidden layer 5 does not exist"):
        Units(layers=(5,)).resolve(tiny_model)
    with pytest.raises(ValueError, match="ablation.sites"):
        Units.from_config(["attention"], "all", "all")
    assert [g.layer for g in Units.from_config(["ffn"], "all", [3]).resolve(tiny_model).groups] == [1, 2]
    explicit = pd.DataFrame({"site": ["ffn", "hidden", "ffn"], "layer": [2, 0, 2], "neuron": [9, 4, 1]})
    resolved = ResolvedUnits.from_table(explicit, tiny_model)
    assert resolved.table().values.tolist() == [["ffn", 2, 1], ["ffn", 2, 9], ["hidden", 0, 4]]


def test_segments_are_hop_aligned_and_cover_the_clip():
    seg = make_segments(19_000, 20, 16_000, 320)
    assert len(seg) == 60 and seg.segment_samples == 320
    assert seg.starts[-1] == 18_880 and seg.ends[-1] == 19_000
    assert np.all(seg.ends[:-1] == seg.starts[1:])
    assert seg.end_s[-1] == pytest.approx(19_000 / 16_000)
    assert torch.equal(seg.sample_to_segment()[[0, 319, 320, 18_999]], torch.tensor([0, 0, 1, 59]))
    assert len(make_segments(19_000, 100, 16_000, 320)) == 12
    with pytest.raises(ValueError, match="ablation.segment_ms=30"):
        make_segments(19_000, 30, 16_000, 320)


def test_loudness_levels():
    seg = Segments(num_samples=1200, segment_samples=400, sample_rate=16_000)
    wave = np.concatenate([np.zeros(400), 0.5 * np.ones(400), 0.005 * np.ones(400)])
    levels = segment_levels_db(wave, seg)
    assert levels[1] == 0 and levels[2] == pytest.approx(-40) and levels[0] == -np.inf


def test_summary_of_a_known_curve():
    segments = Segments(num_samples=1600, segment_samples=400, sample_rate=16_000)
    attributions = np.array([[0.0, 2.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    loud = np.array([False, True, True, False])
    out = summarise(attributions, np.array([5.0, 1.0]), segments, loud)
    first = out.iloc[0]
    assert first["total"] == pytest.approx(2.0)
    assert first["positive_mass"] == pytest.approx(3.0)
    assert first["negative_mass"] == pytest.approx(-1.0)
    assert first["abs_mass"] == pytest.approx(4.0)
    assert first["peak_segment"] == 1 and first["peak_attribution"] == pytest.approx(2.0)
    assert first["peak_time_s"] == pytest.approx(0.0375)  # midpoint of 25..50 ms
    # midpoints 12.5, 37.5, 62.5, 87.5 ms weighted 0, 2, 1, 1
    assert first["centre_of_mass_s"] == pytest.approx((2 * 0.0375 + 0.0625 + 0.0875) / 4)
    assert first["loud_share"] == pytest.approx(0.75)
    assert first["loud_time_share"] == pytest.approx(0.5)
    assert np.isnan(out.iloc[1]["centre_of_mass_s"]) and np.isnan(out.iloc[1]["loud_share"])


@pytest.fixture(scope="module")
def three_clips() -> pd.DataFrame:
    ids = ["03-01-04-02-01-01-04", "03-01-05-01-01-01-05", "03-01-01-01-02-01-12"]
    return pd.DataFrame({"clip_id": ids,
                         "path": [f"Actor_{c[-2:]}/{c}.wav" for c in ids]})


def test_stage_tables_and_shard_invariance(tiny_model, demo_root, three_clips):
    settings = AblationSettings(units=Units(sites=("hidden", "ffn"), layers=(1,), neurons=(2, 8)),
                                combination=Combination("noise-snr10", 100, "mean"), seed=3)
    whole = ablate_clips(tiny_model, three_clips, demo_root, settings, progress=False)
    assert list(whole.summary.columns) == list(SUMMARY_SCHEMA)
    assert list(whole.segments.columns) == list(SEGMENT_SCHEMA)
    assert whole.units.values.tolist() == [["hidden", 1, 2], ["hidden", 1, 8], ["ffn", 1, 2], ["ffn", 1, 8]]
    for clip in three_clips.itertuples():
        n_seg = -(-len(load_waveform(demo_root / clip.path)) // 1600)
        assert whole.curves[clip.clip_id].shape == (4, n_seg)
        assert (whole.segments["clip_id"] == clip.clip_id).sum() == n_seg
    totals = {c: a.sum(axis=1) for c, a in whole.curves.items()}
    for row in whole.summary.itertuples():
        unit = whole.units.index[(whole.units.site == row.site) & (whole.units.layer == row.layer)
                                 & (whole.units.neuron == row.neuron)][0]
        assert row.total == pytest.approx(totals[row.clip_id][unit], abs=1e-4)
    # the same clips in two shards give the same numbers (noise drawn per clip, not per job)
    for k in range(2):
        part = ablate_clips(tiny_model, shard_clips(three_clips, k, 2), demo_root, settings, progress=False)
        for clip_id, curve in part.curves.items():
            np.testing.assert_allclose(curve, whole.curves[clip_id], atol=1e-6, rtol=0)
    empty = ablate_clips(tiny_model, three_clips.iloc[:0], demo_root, settings)
    assert empty.curves == {} and empty.summary.empty and empty.segments.empty
    assert list(empty.summary.columns) == list(SUMMARY_SCHEMA)
