"""The ablation engine: all asked units of one clip from one perturbation sweep.

Captum's ``NeuronFeatureAblation`` ablates one feature group at a time and
reports, for one neuron, f(original) - f(ablated). Every perturbed forward
pass computes *every* unit of every layer, so the engine attributes to a
per-segment gate vector instead (Captum ``FeatureAblation`` on an input of
shape [1, segments], baseline 0) and builds the waveform inside the forward
function: where a gate is 1 the original samples, where it is 0 the
baseline. The forward function returns [batch, units]; Captum then gives
[units, segments] at once, equal to ``NeuronFeatureAblation`` run unit by
unit with a segment feature mask (tested to 1e-5). The encoder runs only as
deep as the deepest asked unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from captum.attr import FeatureAblation

from speechneurons.ablation.reductions import make_reduction
from speechneurons.ablation.segments import Segments
from speechneurons.models import SpeechModel
from speechneurons.models.memory import run_halving
from speechneurons.models.units import SITES, Site


@dataclass(frozen=True)
class UnitGroup:
    """Neurons of one (site, layer), in the order the engine reports them."""

    site: str
    layer: int
    neurons: tuple[int, ...]


@dataclass(frozen=True)
class ResolvedUnits:
    """Explicit units checked against a model, grouped by (site, layer)."""

    groups: tuple[UnitGroup, ...]

    def __len__(self) -> int:
        return sum(len(g.neurons) for g in self.groups)

    @property
    def sites(self) -> list[Site]:
        return [(g.site, g.layer) for g in self.groups]

    def table(self) -> pd.DataFrame:
        """One row per unit: site, layer, neuron (in the engine's output order)."""
        return pd.DataFrame({
            "site": np.concatenate([[g.site] * len(g.neurons) for g in self.groups]).astype(str),
            "layer": np.concatenate([[g.layer] * len(g.neurons) for g in self.groups]).astype(np.int32),
            "neuron": np.concatenate([g.neurons for g in self.groups]).astype(np.int32),
        })

    @classmethod
    def from_table(cls, units: pd.DataFrame, model: SpeechModel, key: str = "units") -> "ResolvedUnits":
        """Explicit (site, layer, neuron) rows, e.g. a selection table; checked against the model."""
        groups = []
        for (site, layer), rows in units.groupby(["site", "layer"], sort=True):
            groups.append(_checked_group(model, str(site), int(layer), rows["neuron"].tolist(), key))
        return cls(groups=tuple(groups))


def _checked_group(model: SpeechModel, site: str, layer: int, neurons: Sequence[int],
                   key: str) -> UnitGroup:
    model.check_site_layer(site, layer, key)
    width = model.width(site)
    bad = sorted(n for n in set(neurons) if not 0 <= n < width)
    if bad:
        raise ValueError(
            f"{key}: neurons {bad} out of range for {site} layers of {model.name_or_path} "
            f"({width} units)"
        )
    return UnitGroup(site=site, layer=layer, neurons=tuple(sorted(set(int(n) for n in neurons))))


@dataclass(frozen=True)
class Units:
    """The config's request: sites x layers x neurons, ``None`` meaning all."""

    sites: tuple[str, ...] = ("hidden",)
    layers: tuple[int, ...] | None = None
    neurons: tuple[int, ...] | None = None

    @classmethod
    def from_config(cls, sites: Sequence[str], layers, neurons) -> "Units":
        """``ablation.sites``, ``ablation.layers`` and ``ablation.neurons`` (lists or ``all``)."""
        as_tuple = lambda v: None if v == "all" else tuple(int(x) for x in v)  # noqa: E731
        bad = sorted(set(sites) - set(SITES))
        if bad:
            raise ValueError(f"ablation.sites: {bad} not among {list(SITES)}")
        return cls(sites=tuple(sites), layers=as_tuple(layers), neurons=as_tuple(neurons))

    def resolve(self, model: SpeechModel) -> ResolvedUnits:
        """Explicit groups in site order, then layer order. ffn has no layer 0, sae only the layers
        with a trained SAE: others skipped."""
        groups = []
        for site in self.sites:
            lowest = 0 if site == "hidden" else 1
            layers = range(lowest, model.num_layers + 1) if self.layers is None else self.layers
            for layer in sorted(set(layers)):
                if (site == "ffn" and layer == 0) or (site == "sae" and layer not in model.saes):
                    continue
                neurons = range(model.width(site)) if self.neurons is None else self.neurons
                groups.append(_checked_group(model, site, layer, neurons, "ablation.layers/neurons"))
        if not groups:
            raise ValueError("ablation.sites/layers: no unit selected")
        return ResolvedUnits(groups=tuple(groups))


def unit_values(model: SpeechModel, audio: torch.Tensor, units: ResolvedUnits,
                reduce) -> torch.Tensor:
    """Raw audio [batch, samples] -> reduced unit values [batch, units]."""
    captured = model.read(audio, units.sites)
    parts = []
    for group in units.groups:
        values = captured[(group.site, group.layer)]
        index = torch.as_tensor(group.neurons, device=values.device)
        parts.append(reduce(values.index_select(2, index)))
    return torch.cat(parts, dim=1)


@dataclass
class ClipAttribution:
    """One clip's result: attributions [units, segments] and unablated values [units]."""

    attributions: torch.Tensor
    original: torch.Tensor
    perturbations_per_eval: int


def gated_forward(x: torch.Tensor, base: torch.Tensor, sample_segment: torch.Tensor,
                  values: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function Captum ablates: gates [batch, segments] in {0, 1} -> unit values [batch, units].

    ``x`` and ``base`` are [samples]; ``sample_segment`` [samples] names each
    sample's segment; where a segment's gate is 0 its samples come from
    ``base``. ``values`` maps audio [batch, samples] to [batch, units].
    """
    def forward(gates: torch.Tensor) -> torch.Tensor:
        keep = gates[:, sample_segment] != 0
        return values(torch.where(keep, x.unsqueeze(0), base.unsqueeze(0)))

    return forward


def attribute_segments(forward: Callable[[torch.Tensor], torch.Tensor], num_segments: int,
                       device: torch.device, perturbations_per_eval: int = 16,
                       show_progress: bool = False) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(original [units], attributions [units, segments], batch used) of a gated forward function.

    Captum ``FeatureAblation`` on all-ones gates with baseline 0: one segment
    off at a time. On running out of memory the batch is halved and the call
    retried (logged); the result does not depend on it.
    """
    gates = torch.ones(1, num_segments, device=device)

    def sweep(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            original = forward(gates)[0]
            attributions = FeatureAblation(forward).attribute(
                gates, baselines=0.0, perturbations_per_eval=batch, show_progress=show_progress)
        return original, attributions.reshape(-1, num_segments)

    (original, attributions), batch = run_halving(sweep, perturbations_per_eval, device,
                                                  "perturbations_per_eval")
    return original, attributions, batch


def ablate_clip(
    model: SpeechModel,
    waveform: torch.Tensor,
    segments: Segments,
    units: ResolvedUnits,
    baseline: torch.Tensor | None = None,
    reduction: str = "mean",
    perturbations_per_eval: int = 16,
    show_progress: bool = False,
) -> ClipAttribution:
    """Attribute every unit to every segment of one clip ([samples] waveform).

    attribution[u, s] = f_u(original) - f_u(segment s replaced by ``baseline``)
    ([samples]; zeros when None), Captum's ablation semantics, for all units
    from one sweep. On running out of memory, ``perturbations_per_eval`` is
    halved and the clip retried (logged); the result does not depend on it.
    """
    if waveform.ndim != 1 or waveform.shape[0] != segments.num_samples:
        raise ValueError(
            f"waveform of shape {tuple(waveform.shape)} does not match "
            f"{segments.num_samples} samples"
        )
    x = waveform.to(model.device)
    base = torch.zeros_like(x) if baseline is None else baseline.to(model.device, x.dtype)
    reduce = make_reduction(reduction, model.frames_per_second)
    forward = gated_forward(x, base, segments.sample_to_segment(model.device),
                            lambda audio: unit_values(model, audio, units, reduce))
    original, attributions, batch = attribute_segments(forward, len(segments), model.device,
                                                       perturbations_per_eval, show_progress)
    return ClipAttribution(
        attributions=attributions.cpu(),
        original=original.cpu(),
        perturbations_per_eval=batch,
    )
