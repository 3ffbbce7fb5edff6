"""The ablation engine equals Captum's NeuronFeatureAblation, unit by unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import NeuronFeatureAblation

from speechneurons.ablation.engine import Units, ablate_clip
from speechneurons.ablation.run import ATTRIBUTION_SCHEMA, AblationSettings, ablate_clips
from speechneurons.ablation.segments import Segments, make_segments
from speechneurons.ablation.summary import SUMMARY_SCHEMA, summarise
from speechneurons.audio import load_waveform

CLIP = "Actor_04/03-01-04-02-01-01-04.wav"
# 1.1875 s of speech from 0.9 s on: 60 segments of 20 ms, the last one 60 samples long
START, LENGTH = 14_400, 19_000


@pytest.fixture(scope="module")
def speech(demo_root) -> torch.Tensor:
    wave = load_waveform(demo_root / CLIP)
    return torch.from_numpy(wave[START : START + LENGTH].copy())


def captum_reference(model, wave, segments, layer, neuron, baseline, reduction):
    """The seed's method: Captum NeuronFeatureAblation for one neuron, segment feature mask."""
    reduce = {"mean": lambda h: h.mean(1), "max": lambda h: h.max(1).values}[reduction]
    if layer == 0:  # hidden_states[0] is what enters the first transformer layer
        module, to_input = model.model.encoder.layers[0], True
        selector = lambda h: reduce(h[..., neuron])  # noqa: E731
    else:  # hidden_states[k] is the output of encoder.layers[k - 1]: (hidden, position_bias)
        module, to_input = model.model.encoder.layers[layer - 1], False
        selector = lambda out: reduce(out[0][..., neuron])  # noqa: E731
    ablator = NeuronFeatureAblation(lambda w: model.model(model.normalize(w)), module)
    base = 0.0 if baseline == "zero" else float(wave.mean())
    attr = ablator.attribute(
        wave[None],
        neuron_selector=selector,
        baselines=base,
        feature_mask=segments.sample_to_segment()[None],
        attribute_to_neuron_input=to_input,
        perturbations_per_eval=8,
    )
    # every sample of a segment carries that segment's attribution
    return attr[0, segments.starts]


@pytest.mark.parametrize(
    "layer, neuron, baseline, reduction",
    [
        (0, 3, "zero", "mean"),
        (1, 17, "zero", "mean"),
        (2, 31, "zero", "mean"),
        (2, 5, "mean", "mean"),
        (1, 0, "zero", "max"),
        (0, 30, "mean", "max"),
    ],
)
def test_engine_equals_captum_neuron_feature_ablation(
    tiny_model, speech, layer, neuron, baseline, reduction
):
    segments = make_segments(LENGTH, 20, 16_000, tiny_model.hop_samples)
    units = Units(layers=(0, 1, 2), neurons=None).resolve(tiny_model)
    result = ablate_clip(tiny_model, speech, segments, units, baseline=baseline,
                         reduction=reduction, perturbations_per_eval=16)
    assert result.attributions.shape == (3 * 32, 60)
    row = units.layers.index(layer) * len(units.neurons) + units.neurons.index(neuron)
    expected = captum_reference(tiny_model, speech, segments, layer, neuron, baseline, reduction)
    assert expected.abs().max() > 1e-3  # the comparison is not between zeros
    torch.testing.assert_close(result.attributions[row], expected, atol=1e-5, rtol=0)


def test_results_do_not_depend_on_perturbations_per_eval(tiny_model, speech):
    segments = make_segments(LENGTH, 40, 16_000, tiny_model.hop_samples)
    units = Units(layers=(1, 2), neurons=(4, 9)).resolve(tiny_model)
    runs = [
        ablate_clip(tiny_model, speech, segments, units, perturbations_per_eval=n).attributions
        for n in (1, 7, 64)
    ]
    assert runs[0].shape == (4, 30)
    for other in runs[1:]:
        torch.testing.assert_close(other, runs[0], atol=1e-5, rtol=0)


def test_original_is_the_unablated_unit_value(tiny_model, speech):
    segments = make_segments(LENGTH, 20, 16_000, tiny_model.hop_samples)
    units = Units(layers=(2,), neurons=(7,)).resolve(tiny_model)
    result = ablate_clip(tiny_model, speech, segments, units)
    with torch.inference_mode():
        direct = tiny_model.hidden_states(speech[None], [2])[0][0, :, 7].mean()
    assert result.original.item() == pytest.approx(direct.item(), abs=1e-6)


def test_units_out_of_range_name_the_key(tiny_model):
    with pytest.raises(ValueError, match=r"ablation.neurons: \[32\]"):
        Units(layers=(1,), neurons=(0, 32)).resolve(tiny_model)
    with pytest.raises(ValueError, match="ablation.layers"):
        Units(layers=(5,), neurons=None).resolve(tiny_model)
    assert Units.from_config("all", [3, 1]).resolve(tiny_model).layers == [0, 1, 2]


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


def test_summary_of_a_known_curve():
    segments = Segments(num_samples=1600, segment_samples=400, sample_rate=16_000)
    attributions = np.array([[0.0, 2.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    out = summarise(attributions, np.array([5.0, 1.0]), segments)
    first = out.iloc[0]
    assert first["total"] == pytest.approx(2.0)
    assert first["positive_mass"] == pytest.approx(3.0)
    assert first["negative_mass"] == pytest.approx(-1.0)
    assert first["abs_mass"] == pytest.approx(4.0)
    assert first["peak_segment"] == 1 and first["peak_attribution"] == pytest.approx(2.0)
    assert first["peak_time_s"] == pytest.approx(0.0375)  # midpoint of 25..50 ms
    # midpoints 12.5, 37.5, 62.5, 87.5 ms weighted 0, 2, 1, 1
    assert first["centre_of_mass_s"] == pytest.approx((2 * 0.0375 + 0.0625 + 0.0875) / 4)
    assert np.isnan(out.iloc[1]["centre_of_mass_s"])


def test_stage_tables_are_consistent(tiny_model, demo_root):
    clips = pd.DataFrame({
        "clip_id": ["03-01-04-02-01-01-04", "03-01-05-01-01-01-05"],
        "path": ["Actor_04/03-01-04-02-01-01-04.wav", "Actor_05/03-01-05-01-01-01-05.wav"],
    })
    settings = AblationSettings(units=Units(layers=(1,), neurons=(2, 8)), segment_ms=100)
    long, summary = ablate_clips(tiny_model, clips, demo_root, settings, progress=False)
    assert list(long.columns) == list(ATTRIBUTION_SCHEMA)
    assert list(summary.columns) == list(SUMMARY_SCHEMA)
    n_seg = {c: -(-len(load_waveform(demo_root / p)) // 1600) for c, p in zip(clips.clip_id, clips.path)}
    assert len(long) == 2 * sum(n_seg.values())
    assert len(summary) == 4
    totals = long.groupby(["clip_id", "layer", "neuron"])["attribution"].sum()
    for row in summary.itertuples():
        assert row.total == pytest.approx(totals[(row.clip_id, row.layer, row.neuron)], abs=1e-4)
    empty_long, empty_summary = ablate_clips(tiny_model, clips.iloc[:0], demo_root, settings)
    assert empty_long.empty and list(empty_long.columns) == list(ATTRIBUTION_SCHEMA)
    assert empty_summary.empty and list(empty_summary.columns) == list(SUMMARY_SCHEMA)
