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
from speechneurons.models.units import start_at
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


def gate_rows(gates: torch.Tensor) -> torch.Tensor:
    """[batch] which row of a clip's ablation sweep each gate row is: 0 for the original (no
    segment off), 1 + s for segment s off (Captum's FeatureAblation turns one segment off at a
    time)."""
    off = gates == 0
    if (off.sum(dim=1) > 1).any():
        raise ValueError("a gate row turns off more than one segment: not a one-at-a-time ablation sweep")
    return torch.where(off.any(dim=1), off.float().argmax(dim=1) + 1, 0).cpu()


@dataclass
class Prefix:
    """A clip's hidden states from its trained sweep: per hidden layer j, [1 + segments, frames,
    width] (CPU), one row per row of the sweep (:func:`gate_rows`), and what layer j returned for
    the original's single row (``template``: WavLM's position bias rides with it)."""

    hidden: dict[int, torch.Tensor]
    template: dict[int, object]

    @classmethod
    def recorder(cls, model: SpeechModel, layers: list[int], num_segments: int, forward):
        """(an empty Prefix, ``forward`` (gates -> unit values) that also fills it)."""
        prefix = cls({}, {})

        def recording(gates: torch.Tensor) -> torch.Tensor:
            rows = gate_rows(gates)
            handles = []
            for j in layers:
                module, where = model.family.site_module(model.model, "hidden", j)

                def keep(value, j=j):
                    hidden = model.family.unpack("hidden", j, value).detach()
                    if j not in prefix.hidden:
                        prefix.hidden[j] = torch.empty((1 + num_segments, *hidden.shape[1:]), dtype=hidden.dtype)
                    prefix.hidden[j][rows] = hidden.cpu()
                    if j > 0 and j not in prefix.template and hidden.shape[0] == 1:
                        prefix.template[j] = value

                if where == "input":
                    handles.append(module.register_forward_pre_hook(lambda m, args, keep=keep: keep(args[0])))
                else:
                    handles.append(module.register_forward_hook(lambda m, a, out, keep=keep: keep(out)))
            try:
                return forward(gates)
            finally:
                for handle in handles:
                    handle.remove()

        return prefix, recording


def randomisation_check(model: SpeechModel, clips: pd.DataFrame, dataset_root: str | Path,
                        units: ResolvedUnits, combo: Combination, settings: RandomisationSettings,
                        ablation_seed: int = 0, batch: int = 16, progress: bool = True,
                        reuse_prefix: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per (step, unit, clip) rows, per-unit flags) for the sampled ``clips`` and ``units``.

    Rows: randomised_from, reached (the step reaches the unit's layer), rho
    and max_abs_change against the trained attributions. Flags: rho_own_layer
    (median over clips once the unit's own layer is random), rho_all (every
    weight random) and flagged = rho_all >= threshold. ``model`` is not changed.

    A clip at a time: its trained sweep keeps the hidden state below every
    evaluated step (``reuse_prefix``), and each step k's sweep starts from the
    state entering layer k, running only the random layers and only for the
    units they reach; an unreached unit keeps its trained attributions, which
    a full sweep would give exactly. The cascade is drawn anew per clip from
    ``settings.seed`` (the same weights). ``reuse_prefix=False`` runs every
    step from the waveform (the reference: the same rows). No unit or no clip (an empty
    selection): empty tables with their columns.
    """
    if not len(units) or clips.empty:
        long = pd.DataFrame(columns=[*combo.columns(), "randomised_from", *UNIT, "reached", "clip_id", "rho",
                                     "max_abs_change"])
        return long, unit_flags(long, settings.threshold)
    unit_table = units.table()
    layer = unit_table["layer"].to_numpy()
    order = [k for k, _ in cascade(model)]
    wanted = set(range(1, model.num_layers + 1)) if settings.layers is None else set(settings.layers)
    evaluated = [k for k in order if k == FEATURES or k in wanted]
    cached = sorted({k - 1 for k in evaluated if k != FEATURES}) if reuse_prefix else []
    found: dict[tuple[int, int], np.ndarray] = {}
    trained: list[np.ndarray] = []
    clip_ids: list[str] = []
    bar = tqdm(total=len(clips) * len(evaluated), desc="randomisation cascade", unit="step", disable=not progress)
    for c, row in enumerate(clips.itertuples(index=False)):
        clip = prepare_clip(model, row, dataset_root, combo, ablation_seed)
        prefix, forward = Prefix.recorder(model, cached, len(clip.segments), clip.forward(model, units, combo.reduction))
        trained.append(attribute_segments(forward, len(clip.segments), model.device, batch)[1].double().cpu().numpy())
        clip_ids.append(clip.clip_id)
        copy_ = dataclasses.replace(model, model=copy.deepcopy(model.model))
        generator = torch.Generator().manual_seed(settings.seed)
        for randomised_from, parameters in cascade(copy_):
            reinitialise_(parameters, generator)
            if randomised_from not in evaluated:
                continue
            # every unit from the waveform (the reference), or the reached ones from the cached state
            reached = layer >= randomised_from if reuse_prefix else np.ones(len(layer), dtype=bool)
            after = trained[c].copy()
            if reached.any():
                sub = ResolvedUnits(tuple(g for g in units.groups if not reuse_prefix or g.layer >= randomised_from))
                forward = clip.forward(copy_, sub, combo.reduction)
                start = randomised_from - 1
                if randomised_from != FEATURES and start in prefix.hidden:
                    forward = _started(copy_, forward, start, prefix)
                after[reached] = attribute_segments(forward, len(clip.segments), copy_.device,
                                                    batch)[1].double().cpu().numpy()
            found[(randomised_from, c)] = after
            bar.update()
        del copy_, prefix
    bar.close()
    rows = []
    for randomised_from in evaluated:
        for c, clip_id in enumerate(clip_ids):
            before, after = trained[c], found[(randomised_from, c)]
            rows.append(pd.DataFrame({
                **combo.columns(), "randomised_from": randomised_from, **unit_table,
                "reached": layer >= randomised_from,
                "clip_id": clip_id, "rho": row_spearman(before, after),
                "max_abs_change": np.abs(after - before).max(axis=1)}))
    long = pd.concat(rows, ignore_index=True)
    return long, unit_flags(long, settings.threshold)


def _started(model: SpeechModel, forward, layer: int, prefix: Prefix):
    """``forward`` (gates -> unit values) run from the cached hidden ``layer`` of each gate row."""
    def started(gates: torch.Tensor) -> torch.Tensor:
        hidden = prefix.hidden[layer][gate_rows(gates)].to(model.device)
        with start_at(model.family, model.model, layer, hidden, prefix.template.get(layer)):
            return forward(gates)

    return started


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
