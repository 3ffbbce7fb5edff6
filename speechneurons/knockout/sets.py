"""The unit sets a knock-out removes: per fold, site (hidden units or the latents of a hidden
layer's SAE), layer and target level, the cross-fitted units and matched random controls; and
where a set's layers sit in the activation matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.spec import CorpusSpec
from speechneurons.settings import FromConfig

SET_COLUMNS = ["set_id", "fold", "held_out", "site", "layer", "level", "condition", "replicate", "neurons",
               "values"]


@dataclass(frozen=True)
class KnockoutSettings(FromConfig):
    """The ``knockout`` section of the config."""

    SECTION: ClassVar[str] = "knockout"

    value: str = "mean"  # mean: each unit's corpus mean; zero
    random_sets: int = 3
    nearest: int = 5  # a control unit is drawn among the this many closest in variance
    seed: int = 0
    layers: tuple[int, ...] | None = None  # hidden layers to knock out in; None: every selected one


def knockout_sets(selected: pd.DataFrame, matrix: ActivationMatrix, spec: CorpusSpec,
                  settings: KnockoutSettings, sites: tuple[str, ...] = ("hidden",)) -> pd.DataFrame:
    """One row per unit set to knock out: :data:`SET_COLUMNS`.

    Per fold of the cross-fitted selection (the ``cross_fit`` rows of
    ``selected``: units chosen on the other folds' speakers), site of
    ``sites`` (``hidden``; ``sae``: latents of a hidden layer's SAE, which
    ``matrix`` must hold), layer (of ``layers``, else every one with
    selected units) and target level:
    the fold's units for that level (condition ``selected``) and
    ``random_sets`` sets of as many other units of that layer (``random``),
    each unit drawn among the ``nearest`` units that no level selected at
    that layer in that fold, closest to a selected one in log variance of
    its pooled activation. ``values``: what each unit is set to (its mean
    over clips, or 0). ``held_out``: the fold's speakers, the only ones a
    set is knocked out and scored on.
    """
    if settings.value not in ("mean", "zero"):
        raise ValueError(f"knockout.value: {settings.value!r} is not mean or zero")
    # a stream of draws per site: the hidden sets are the same with and without the SAE's
    rngs = {site: np.random.default_rng(settings.seed if site == "hidden" else [settings.seed, i])
            for i, site in enumerate(sites)}
    top = selected[(selected["reason"] == "cross_fit") & selected["site"].isin(list(sites))]
    if settings.layers is not None:
        top = top[top["layer"].isin(list(settings.layers))]
    rows = []
    for (fold, site, layer, level), chosen in top.groupby(["fold", "site", "layer", spec.target], sort=True):
        units = matrix.units[(matrix.units["site"] == site) & (matrix.units["layer"] == layer)]
        x = matrix.values[:, units.index.to_numpy()]
        means, log_var = x.mean(axis=0), np.log(x.var(axis=0) + 1e-12)
        position = {int(n): i for i, n in enumerate(units["neuron"])}
        picked = [position[int(n)] for n in chosen["neuron"]]
        # controls come from units no level selected at this layer in this fold
        in_fold = top[(top["fold"] == fold) & (top["site"] == site) & (top["layer"] == layer)]
        any_level = {position[int(n)] for n in in_fold["neuron"]}
        others = [i for i in range(len(units)) if i not in any_level]
        held_out = list(chosen["held_out"].iloc[0])

        def row(condition: str, replicate: int, columns: list[int]) -> dict:
            return {"fold": int(fold), "held_out": held_out, "site": str(site), "layer": int(layer), "level": level,
                    "condition": condition, "replicate": replicate,
                    "neurons": [int(units["neuron"].iloc[c]) for c in columns],
                    "values": [0.0 if settings.value == "zero" else float(means[c]) for c in columns]}

        rows.append(row("selected", 0, picked))
        for replicate in range(1, settings.random_sets + 1):
            pool, controls = list(others), []
            rng = rngs[site]
            for target in rng.permutation(picked):
                if not pool:
                    break
                closest = np.argsort(np.abs(log_var[pool] - log_var[target]))[: settings.nearest]
                controls.append(pool.pop(int(rng.choice(closest))))
            rows.append(row("random", replicate, controls))
    out = pd.DataFrame(rows, columns=SET_COLUMNS[1:])
    out.insert(0, "set_id", [f"F{r.fold}-{'L' if r.site == 'hidden' else 'SAE'}{r.layer}-{r.level}-"
                             f"{r.condition}{r.replicate}"
                             for r in out.itertuples(index=False)])
    return out


def knocked_units(matrix: ActivationMatrix, layer: int) -> np.ndarray:
    """Columns of ``matrix`` that :func:`speechneurons.knockout.forward.knocked_activations` returns
    for a set at ``layer``."""
    hidden = matrix.units[(matrix.units["site"] == "hidden") & (matrix.units["layer"] >= layer)]
    return hidden.sort_values(["layer", "neuron"]).index.to_numpy()
