"""The ablation engine: all asked units of one clip from one perturbation sweep.

Captum's ``NeuronFeatureAblation`` ablates one feature group at a time and
reports, for one neuron, f(original) - f(ablated). Every perturbed forward
pass computes *every* unit of every layer, so the engine attributes to a
per-segment gate vector instead (Captum ``FeatureAblation`` on an input of
shape [1, segments], baseline 0) and builds the waveform inside the forward
function: where a gate is 1 the original samples, where it is 0 the
baseline. The forward function returns [batch, units]; Captum then gives
[units, segments] at once, equal to ``NeuronFeatureAblation`` run unit by
unit with a segment feature mask (tested to 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from captum.attr import FeatureAblation

from speechneurons.ablation.baselines import make_baseline
from speechneurons.ablation.reductions import reduce_frames
from speechneurons.ablation.segments import Segments
from speechneurons.models import SpeechModel

SITE_HIDDEN = "hidden"


@dataclass(frozen=True)
class Units:
    """Which units to attribute: hidden layers x neuron indices (``None`` = all)."""

    layers: tuple[int, ...]
    neurons: tuple[int, ...] | None = None

    @classmethod
    def from_config(cls, layers: str | Sequence[int], neurons: str | Sequence[int]) -> "Units":
        """``ablation.layers`` / ``ablation.neurons``: a list of ints or ``all``."""
        as_tuple = lambda v: None if v == "all" else tuple(int(x) for x in v)  # noqa: E731
        return cls(layers=as_tuple(layers) or (), neurons=as_tuple(neurons))

    def resolve(self, model: SpeechModel) -> "ResolvedUnits":
        """Check against the model; ``all`` becomes explicit indices."""
        layers = (
            list(range(model.num_layers + 1))
            if not self.layers
            else model.check_layers(self.layers, "ablation.layers")
        )
        if self.neurons is None:
            neurons = list(range(model.hidden_size))
        else:
            bad = [n for n in self.neurons if not 0 <= n < model.hidden_size]
            if bad:
                raise ValueError(
                    f"ablation.neurons: {bad} out of range for {model.name_or_path} "
                    f"(hidden size {model.hidden_size})"
                )
            neurons = sorted(set(self.neurons))
        return ResolvedUnits(layers=layers, neurons=neurons)


@dataclass(frozen=True)
class ResolvedUnits:
    """Explicit units, ordered layer-major: unit i is (layers[i // N], neurons[i % N])."""

    layers: list[int]
    neurons: list[int]

    def __len__(self) -> int:
        return len(self.layers) * len(self.neurons)

    def table(self) -> pd.DataFrame:
        """One row per unit: site, layer, neuron (in the engine's output order)."""
        return pd.DataFrame(
            {
                "site": SITE_HIDDEN,
                "layer": np.repeat(self.layers, len(self.neurons)).astype(np.int32),
                "neuron": np.tile(self.neurons, len(self.layers)).astype(np.int32),
            }
        )


def unit_values(
    model: SpeechModel, waveform: torch.Tensor, units: ResolvedUnits, reduction: str
) -> torch.Tensor:
    """Raw audio [batch, samples] -> reduced unit values [batch, units]."""
    index = torch.as_tensor(units.neurons, device=waveform.device)
    hidden = model.hidden_states(waveform, units.layers)
    return torch.cat([reduce_frames(h, reduction)[:, index] for h in hidden], dim=1)


@dataclass
class ClipAttribution:
    """One clip's result: attributions [units, segments] and unablated values [units]."""

    attributions: torch.Tensor
    original: torch.Tensor


def ablate_clip(
    model: SpeechModel,
    waveform: torch.Tensor,
    segments: Segments,
    units: ResolvedUnits,
    baseline: str = "zero",
    reduction: str = "mean",
    perturbations_per_eval: int = 16,
    show_progress: bool = False,
) -> ClipAttribution:
    """Attribute every unit to every segment of one clip ([samples] waveform).

    attribution[u, s] = f_u(original) - f_u(segment s replaced by the baseline),
    Captum's ablation semantics, for all units from one sweep.
    """
    if waveform.ndim != 1 or waveform.shape[0] != segments.num_samples:
        raise ValueError(
            f"waveform of shape {tuple(waveform.shape)} does not match "
            f"{segments.num_samples} samples"
        )
    x = waveform.to(model.device)
    base = make_baseline(baseline, x)
    sample_segment = segments.sample_to_segment(model.device)

    def forward(gates: torch.Tensor) -> torch.Tensor:
        """Gates [batch, segments] in {0, 1} -> unit values [batch, units]."""
        keep = gates[:, sample_segment] != 0
        audio = torch.where(keep, x.unsqueeze(0), base.unsqueeze(0))
        return unit_values(model, audio, units, reduction)

    gates = torch.ones(1, len(segments), device=model.device)
    with torch.no_grad():
        original = forward(gates)[0]
        attributions = FeatureAblation(forward).attribute(
            gates,
            baselines=0.0,
            perturbations_per_eval=perturbations_per_eval,
            show_progress=show_progress,
        )
    return ClipAttribution(
        attributions=attributions.reshape(len(units), len(segments)).cpu(),
        original=original.cpu(),
    )
