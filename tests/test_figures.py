"""Figures never show the impossible or the empty without saying so: points instead of boxes for few
values, "not drawn" where nothing changed, shared axes where panels are compared, titles inside."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from speechneurons.datasets.ravdess import SPEC  # noqa: E402
from speechneurons.figures import (  # noqa: E402
    clip_caption,
    plot_contrast,
    plot_cross_model,
    plot_graded_effects,
    plot_group_contrasts,
    plot_knockout,
    plot_level_comparison,
    plot_probes,
    plot_unit_distributions,
)

EMOTIONS = ["neutral", "happy", "sad", "angry"]


def texts(fig: plt.Figure) -> str:
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def boxes(ax: plt.Axes) -> int:
    return sum(isinstance(p, matplotlib.patches.PathPatch) for p in ax.patches)


def inside(fig: plt.Figure, artist) -> bool:
    fig.canvas.draw()
    box, frame = artist.get_window_extent(), fig.bbox
    return box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y1 <= frame.y1 + 1


def per_clip(n_per_level: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"emotion": e, "gender": g, "total": rng.normal(), "value": rng.normal()}
            for e in EMOTIONS for i in range(n_per_level) for g in [("male", "female")[i % 2]]]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n, drawn_boxes", [(2, 0), (6, 4)])
def test_levels_with_few_clips_show_points_and_means_not_boxes(n, drawn_boxes):
    fig = plot_level_comparison(per_clip(n), SPEC, "hidden layer 1, neuron 21")
    ax = fig.axes[0]
    assert boxes(ax) == drawn_boxes
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{e}\n(n={n})" for e in EMOTIONS]
    assert "change in the unit's pooled activation" in ax.get_ylabel()
    plt.close(fig)


def test_unit_distributions_keep_their_title_inside_and_use_points_for_two_clips():
    values = pd.concat([per_clip(2).assign(unit=f"ffn layer 2, neuron {k} (top for {e})")
                        for k, e in enumerate(EMOTIONS)], ignore_index=True)
    fig = plot_unit_distributions(values, SPEC, "pooled mean activation per clip")
    assert inside(fig, fig._suptitle)
    assert sum(boxes(ax) for ax in fig.axes) == 0
    assert "pooled activation\n(model units)" in texts(fig)
    plt.close(fig)


def knockout_rows(selected: float, sae: bool = False) -> pd.DataFrame:
    return pd.DataFrame([{"site": site, "layer": layer, "probe_layer": layer, "level": e,
                          "own_loss_selected": selected if layer == 2 else 0.0, "own_loss_random": 0.0}
                         for site, layer in [("hidden", 0), ("hidden", 1), ("hidden", 2)] + [("sae", 2)] * sae
                         for e in EMOTIONS])


def test_a_knockout_that_changed_nothing_is_not_drawn():
    fig = plot_knockout(knockout_rows(0.0), SPEC)
    assert "knock-out: not drawn" in texts(fig) and "every own-level recall loss is 0" in texts(fig)
    plt.close(fig)
    fig = plot_knockout(knockout_rows(0.2), SPEC)  # only layer 2 changed: the others say so
    assert texts(fig).count("no recall changed at this layer") == 2
    assert "recall before - after knock-out" in fig.axes[0].get_ylabel()
    plt.close(fig)
    fig = plot_knockout(knockout_rows(0.2, sae=True), SPEC)  # latents get their own panel
    assert [ax.get_title() for ax in fig.axes] == ["hidden layer 0", "hidden layer 1", "hidden layer 2",
                                                   "SAE latents of layer 2"]
    plt.close(fig)


def test_models_by_layer_share_each_row_s_axis_from_zero():
    layers = pd.DataFrame([{"model": "m", "site": "hidden", "layer": k, "factor": f,
                            "share_selective": 0.0 if f == "statement" else 0.1 * k,
                            "median_eta2": 0.01 * (k + 1) if f == "statement" else 0.4}
                           for f in ("emotion", "statement") for k in range(3)])
    fig = plot_cross_model(layers)
    axes = np.array(fig.axes[:4]).reshape(2, 2)
    for row in axes:
        assert row[0].get_shared_y_axes().joined(row[0], row[1])
        assert row[0].get_ylim()[0] == 0
    assert "no unit selective\nat any layer" in texts(fig)
    plt.close(fig)


def test_probe_bands_stay_on_the_accuracy_scale_and_name_the_folds():
    probes = pd.DataFrame([{"site": "hidden", "layer": k, "factor": "emotion", "balanced_accuracy": 0.3,
                            "ci_low": 0.1, "ci_high": 0.6, "chance": 0.25, "n_folds": 3} for k in range(3)])
    fig = plot_probes(probes)
    assert fig.axes[0].get_ylim() == (0, 1) and "3 folds" in fig.axes[0].get_title()
    plt.close(fig)


def test_a_long_contrast_title_wraps_inside_the_figure():
    table = pd.DataFrame({"a": [0.5, -0.2, 1.0], "b": [0.1, 0.3, -0.4], "site": ["ffn", "hidden", "ffn"]})
    fig = plot_contrast(table, "a", "b", pd.Series([False, True, False]),
                        "gender: female - male, per tested unit (held-out speakers as replicates)",
                        "activation: Cohen's d over speakers", "attribution: Cohen's d over speakers")
    assert inside(fig, fig.axes[0].title) and "n=3 units" in fig.axes[0].get_title()
    plt.close(fig)


def test_graded_effects_pivot_each_measure_and_an_unanswered_question_says_why():
    """One point per (fold, unit) with its activation and attribution d_z; a measure the table lacks
    leaves its axis empty (NaN), not a KeyError; a question not asked draws its reason."""
    graded = pd.DataFrame({"fold": 0, "site": "hidden", "layer": [1, 1, 2], "neuron": [3, 3, 4],
                           "measure": ["activation", "attribution", "activation"],
                           "dz": [0.4, -0.2, 0.9], "q": [0.01, 0.5, 0.2]})
    fig = plot_graded_effects(graded, SPEC, 0.05)
    assert "n=1 units; 1 more without both effects" in fig.axes[0].get_title()
    assert "intensity: strong - normal, paired within speaker" in fig.axes[0].get_title()
    plt.close(fig)
    reason = "question 5 is not asked: corpus x has no graded factor"
    for plot in (plot_graded_effects, plot_group_contrasts):
        fig = plot(graded.iloc[0:0], SPEC, 0.05, reason)
        assert reason in texts(fig) and not any(ax.collections for ax in fig.axes)
        plt.close(fig)


def test_a_clip_caption_names_every_factor():
    clip = pd.Series({"emotion": "angry", "gender": "male", "intensity": "normal", "statement": 1})
    assert clip_caption(clip, SPEC) == "emotion angry, gender male, intensity normal, statement 1"


def test_profile_bands_of_two_speakers_are_left_out_and_the_figure_says_so():
    from speechneurons.figures import plot_temporal_profiles

    rows = [{"site": "all", "layer": -1, "emotion": e, "alignment": a, "bin": b, "bin_start": b / 10,
             "bin_end": (b + 1) / 10, "bin_unit": "fraction of the clip", "n_speakers": n,
             "mean_share": 0.1, "ci_low": 0.01, "ci_high": 0.9 if n == 2 else 0.2}
            for e, n in (("neutral", 2), ("happy", 6)) for a in ("normalised", "onset", "offset")
            for b in range(10)]
    fig = plot_temporal_profiles(pd.DataFrame(rows), SPEC)
    assert "neutral (n=2 speakers)" in texts(fig) and "at least 3 speakers" in texts(fig)
    assert fig.axes[0].get_ylim()[1] == pytest.approx(0.21)  # the drawn bands, not the 0.9 of two
    plt.close(fig)


def test_the_clip_figure_and_listening_plot_draw_voicing_and_f0_under_the_curve():
    """With a prosody track, each curve panel is shaded over the voiced stretches (here two) and
    carries the F0 contour on a right-hand axis; without one (a failed track), neither."""
    from speechneurons.figures import plot_clip_attribution
    from speechneurons.listen import clip_section

    frames = np.arange(50)
    voiced = (frames >= 5) & (frames < 20) | (frames >= 30) & (frames < 45)
    track = pd.DataFrame({"start_s": frames * 0.02, "end_s": (frames + 1) * 0.02, "voiced": voiced,
                          "f0_hz": np.where(voiced, 120.0 + frames, np.nan)})
    curve = pd.DataFrame({"segment": range(10), "start_s": np.arange(10) * 0.1, "end_s": np.arange(1, 11) * 0.1,
                          "attribution": np.linspace(-1, 1, 10)})
    wave = np.random.default_rng(0).normal(0, 0.1, 16_000)
    fig = plot_clip_attribution(wave, 16_000, {"hidden 1 #2": curve}, "clip", track)
    twins = [ax for ax in fig.axes if ax.get_ylabel() == "F0 (Hz)"]
    assert len(twins) == 1
    f0_line = twins[0].get_lines()[0]
    assert np.nanmax(f0_line.get_ydata()) == pytest.approx(164.0)
    shaded = [p for p in fig.axes[2].patches if p.get_alpha() == pytest.approx(0.08)]
    assert len(shaded) == 2
    plt.close(fig)
    bare = plot_clip_attribution(wave, 16_000, {"hidden 1 #2": curve}, "clip")
    assert not [ax for ax in bare.axes if ax.get_ylabel() == "F0 (Hz)"]
    plt.close(bare)
    section = clip_section("clip", wave, 16_000, curve, track)
    assert section.duration == pytest.approx(1.0) and len(section.image) > 1000
