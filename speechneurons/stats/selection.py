"""Which units to ablate: top units per (layer, target level), an explicit list, random controls."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speechneurons.cache import ActivationMatrix
from speechneurons.datasets.spec import CorpusSpec
from speechneurons.stats.oneway import cohens_d

#: the unit's row of the target factor in the selectivity table, carried beside each selected unit
CARRIED = ["q_speaker", "q_perm", "selective"]


def selection_columns(spec: CorpusSpec) -> list[str]:
    """Columns of ``selected_units.parquet`` before CARRIED; the target factor's column holds the level."""
    return ["site", "layer", "neuron", "reason", spec.target, "rank", "score"]


@dataclass(frozen=True)
class SelectionSettings:
    """The ``selection`` section of the config."""

    top_k: int = 4
    explicit: list[dict] = field(default_factory=list)
    random_controls: int = 4
    seed: int = 0


def select_units(matrix: ActivationMatrix, clips: pd.DataFrame, selectivity: pd.DataFrame,
                 spec: CorpusSpec, settings: SelectionSettings) -> tuple[pd.DataFrame, list[str]]:
    """(one row per (unit, reason) with :func:`selection_columns` + CARRIED; notes).

    top_k: per (site, layer) and level of the target factor, the units with
    the largest one-vs-rest Cohen's d for that level (score = d). explicit:
    ``selection.explicit`` as given. random_control: per (site, layer) that
    has a selected unit, ``random_controls`` other units of that layer drawn
    with ``seed`` (score NaN). Every row also carries the unit's target
    factor q_speaker, q_perm and selective (the speaker-general test). When
    nothing can be selected (fewer than two target levels and no explicit
    unit) the table is empty and ``notes`` says why.
    """
    target = spec.target
    columns = selection_columns(spec)
    meta = clips.set_index("clip_id").loc[matrix.clip_ids]
    units = matrix.units.reset_index(drop=True)
    rows, notes = [], []
    levels = [e for e in spec.levels(target) if e in set(meta[target])]
    if len(levels) < 2 and settings.top_k > 0:
        notes.append(f"selection: no top_k units, the clips hold {len(levels)} level(s) of {target} "
                     "and a unit's preference needs two")
    if len(levels) >= 2 and settings.top_k > 0:
        for (site, layer), group in units.groupby(["site", "layer"], sort=True):
            x = matrix.values[:, group.index.to_numpy()]
            for level in levels:
                d = cohens_d(x, (meta[target] == level).to_numpy())
                best = np.argsort(-np.nan_to_num(d, nan=-np.inf))[: settings.top_k]
                for rank, column in enumerate(best, start=1):
                    neuron = int(group["neuron"].iloc[column])
                    rows.append({"site": site, "layer": int(layer), "neuron": neuron,
                                 "reason": "top_k", target: level, "rank": rank,
                                 "score": float(d[column])})
    known = set(map(tuple, units[["site", "layer", "neuron"]].itertuples(index=False)))
    for i, item in enumerate(settings.explicit):
        key = (str(item.get("site", "hidden")), int(item["layer"]), int(item["neuron"]))
        if key not in known:
            raise ValueError(f"selection.explicit[{i}]: unit {key} is not in the activation cache")
        rows.append({"site": key[0], "layer": key[1], "neuron": key[2], "reason": "explicit",
                     target: None, "rank": i + 1, "score": np.nan})
    chosen = pd.DataFrame(rows, columns=columns)
    rng = np.random.default_rng(settings.seed)
    controls = []
    for (site, layer), picked in chosen.groupby(["site", "layer"], sort=True):
        pool = units[(units["site"] == site) & (units["layer"] == layer)
                     & ~units["neuron"].isin(picked["neuron"])]["neuron"].to_numpy()
        draw = rng.choice(pool, size=min(settings.random_controls, len(pool)), replace=False)
        for rank, neuron in enumerate(sorted(draw), start=1):
            controls.append({"site": site, "layer": int(layer), "neuron": int(neuron),
                             "reason": "random_control", target: None, "rank": rank,
                             "score": np.nan})
    out = pd.concat([chosen, pd.DataFrame(controls, columns=columns)], ignore_index=True)
    if out.empty:
        notes.append("selection: no unit selected (top_k, explicit and random_controls give none)")
    out = out.astype({"layer": "int32", "neuron": "int32", "rank": "int32"})
    carried = selectivity.loc[selectivity["factor"] == target, ["site", "layer", "neuron", *CARRIED]]
    out = out.merge(carried.astype({"layer": "int32", "neuron": "int32"}),
                    on=["site", "layer", "neuron"], how="left")
    return out, notes
