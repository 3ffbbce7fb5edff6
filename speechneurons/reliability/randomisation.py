"""Cascading model randomisation (Adebayo et al. 2018) for segment attributions.

The weights are re-initialised top down: transformer layer L, then L-1, ...,
then layer 1, then everything below the transformer (CNN feature encoder,
feature projection, positional convolution). After each step the sampled
attributions are recomputed and compared with the trained model's by
Spearman's rank correlation, per (unit, clip). A unit is only reached by a
step at or below its own layer; above it its attributions are unchanged
(exactly: the engine never runs the layers above the deepest unit). An
attribution that survives the full randomisation (rank correlation at least
``threshold``) reflects the input, not what the model learnt: it is flagged.

Re-initialising draws every parameter tensor of a block from a normal
distribution with that tensor's own mean and standard deviation (a tensor
of one value, such as a LayerNorm's ones, stays as initialised), so the
activations keep their scale whatever the family's own init scheme.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.ablation.engine import ResolvedUnits, attribute_segments
from speechneurons.ablation.run import prepare_clip
from speechneurons.models import SpeechModel
from speechneurons.combination import Combination
from speechneurons.reliability.common import FEATURES, UNIT, row_spearman
from speechneurons.settings import FromConfig


@dataclass(frozen=True)
class RandomisationSettings(FromConfig):
    """``reliability.randomisation``: the sample, the steps evaluated and the flag's threshold."""

    SECTION: ClassVar[str] = "reliability.randomisation"

    clips: int = 2
    units: int = 8
    layers: tuple[int, ...] | None = None  # cascade steps evaluated (None = every layer); the last always
    threshold: float = 0.8
    seed: int = 0


def cascade(model: SpeechModel) -> list[tuple[int, list[torch.nn.Parameter]]]:
    """[(randomised_from, parameters re-initialised at this step)], top layer first.

    randomised_from = k means transformer layers k..L are random after the
    step; FEATURES (0) means every weight is.
    """
    layers = model.family.encoder_layers(model.model)
    steps = [(k, list(layers[k - 1].parameters())) for k in range(len(layers), 0, -1)]
    in_layers = {id(p) for layer in layers for p in layer.parameters()}
    steps.append((FEATURES, [p for p in model.model.parameters() if id(p) not in in_layers]))
    return steps


def reinitialise_(parameters: list[torch.nn.Parameter], generator: torch.Generator) -> None:
    """Draw each tensor from N(its mean, its standard deviation), in place."""
    with torch.no_grad():
        for p in parameters:
            if p.numel() < 2:
                continue
            mean, std = p.double().mean(), p.double().std()
            drawn = torch.randn(p.shape, generator=generator, dtype=torch.float64) * std + mean
            p.copy_(drawn.to(p.dtype))


def randomisation_check(model: SpeechModel, clips: pd.DataFrame, dataset_root: str | Path,
                        units: ResolvedUnits, combo: Combination, settings: RandomisationSettings,
                        ablation_seed: int = 0, batch: int = 16, progress: bool = True
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per (step, unit, clip) rows, per-unit flags) for the sampled ``clips`` and ``units``.

    Rows: randomised_from, reached (the step reaches the unit's layer), rho
    and max_abs_change against the trained attributions. Flags: rho_own_layer
    (median over clips once the unit's own layer is random), rho_all (every
    weight random) and flagged = rho_all >= threshold. ``model`` is not changed.
    """
    unit_table = units.table()
    prepared = [prepare_clip(model, clip, dataset_root, combo, ablation_seed)
                for clip in clips.itertuples(index=False)]

    def attributions(m: SpeechModel) -> list[np.ndarray]:
        out = []
        for clip in prepared:
            forward = clip.forward(m, units, combo.reduction)
            out.append(attribute_segments(forward, len(clip.segments), m.device, batch)[1].double().cpu().numpy())
        return out

    trained = attributions(model)
    copy_ = dataclasses.replace(model, model=copy.deepcopy(model.model))
    generator = torch.Generator().manual_seed(settings.seed)
    steps = cascade(copy_)
    wanted = set(range(1, model.num_layers + 1)) if settings.layers is None else set(settings.layers)
    rows = []
    for randomised_from, parameters in tqdm(steps, desc="randomisation cascade", unit="step",
                                            disable=not progress):
        reinitialise_(parameters, generator)
        if randomised_from != FEATURES and randomised_from not in wanted:
            continue
        for clip, before, after in zip(prepared, trained, attributions(copy_), strict=True):
            rows.append(pd.DataFrame({
                **combo.columns(), "randomised_from": randomised_from, **unit_table,
                "reached": (unit_table["layer"] >= randomised_from).to_numpy(),
                "clip_id": clip.clip_id, "rho": row_spearman(before, after),
                "max_abs_change": np.abs(after - before).max(axis=1)}))
    long = pd.concat(rows, ignore_index=True)
    return long, unit_flags(long, settings.threshold)


def unit_flags(long: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Per unit: rho_own_layer, rho_all (medians over clips) and flagged = rho_all >= threshold."""
    by_step = long.groupby([*UNIT, "randomised_from"], sort=True)["rho"].median().reset_index()
    out = []
    for (site, layer, neuron), rows in by_step.groupby(UNIT, sort=True):
        rho = rows.set_index("randomised_from")["rho"]
        own = rho.get(int(layer), np.nan) if layer > 0 else rho.get(FEATURES, np.nan)
        out.append({"site": site, "layer": layer, "neuron": neuron, "rho_own_layer": own,
                    "rho_all": rho.get(FEATURES, np.nan)})
    flags = pd.DataFrame(out, columns=[*UNIT, "rho_own_layer", "rho_all"])
    flags["flagged"] = flags["rho_all"] >= threshold
    return flags
