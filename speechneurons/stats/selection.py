"""Which units to ablate: top units per (layer, emotion), an explicit list, random controls."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from speechneurons.activations import ActivationMatrix
from speechneurons.stats.oneway import cohens_d
from speechneurons.stats.selectivity import FACTORS

SELECTION_COLUMNS = ["site", "layer", "neuron", "reason", "emotion", "rank", "score"]
#: the unit's emotion row of the selectivity table, carried beside each selected unit
CARRIED = ["q_speaker", "q_perm", "selective"]


@dataclass(frozen=True)
class SelectionSettings:
    """The ``selection`` section of the config."""

    top_k: int = 4
    explicit: list[dict] = field(default_factory=list)
    random_controls: int = 4
    seed: int = 0


def select_units(matrix: ActivationMatrix, clips: pd.DataFrame, selectivity: pd.DataFrame,
                 settings: SelectionSettings) -> tuple[pd.DataFrame, list[str]]:
    """(one row per (unit, reason) with SELECTION_COLUMNS + CARRIED; notes).

    top_k: per (site, layer) and emotion, the units with the largest
    one-vs-rest Cohen's d for that emotion (score = d). explicit:
    ``selection.explicit`` as given. random_control: per (site, layer) that
    has a selected unit, ``random_controls`` other units of that layer drawn
    with ``seed`` (score NaN). Every row also carries the unit's emotion
    q_speaker, q_perm and selective (the speaker-general test). When nothing
    can be selected (fewer than two emotions and no explicit unit) the table
    is empty and ``notes`` says why.
    """
    meta = clips.set_index("clip_id").loc[matrix.clip_ids]
    units = matrix.units.reset_index(drop=True)
    rows, notes = [], []
    emotions = [e for e in FACTORS["emotion"][1] if e in set(meta["emotion"])]
    if len(emotions) < 2 and settings.top_k > 0:
        notes.append(f"selection: no top_k units, the clips hold {len(emotions)} emotion(s) "
                     "and a unit's preference needs two")
    if len(emotions) >= 2 and settings.top_k > 0:
        for (site, layer), group in units.groupby(["site", "layer"], sort=True):
            x = matrix.values[:, group.index.to_numpy()]
            for emotion in emotions:
                d = cohens_d(x, (meta["emotion"] == emotion).to_numpy())
                best = np.argsort(-np.nan_to_num(d, nan=-np.inf))[: settings.top_k]
                for rank, column in enumerate(best, start=1):
                    neuron = int(group["neuron"].iloc[column])
                    rows.append({"site": site, "layer": int(layer), "neuron": neuron,
                                 "reason": "top_k", "emotion": emotion, "rank": rank,
                                 "score": float(d[column])})
    known = set(map(tuple, units[["site", "layer", "neuron"]].itertuples(index=False)))
    for i, item in enumerate(settings.explicit):
        key = (str(item.get("site", "hidden")), int(item["layer"]), int(item["neuron"]))
        if key not in known:
            raise ValueError(f"selection.explicit[{i}]: unit {key} is not in the activation cache")
        rows.append({"site": key[0], "layer": key[1], "neuron": key[2], "reason": "explicit",
                     "emotion": None, "rank": i + 1, "score": np.nan})
    chosen = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    rng = np.random.default_rng(settings.seed)
    controls = []
    for (site, layer), picked in chosen.groupby(["site", "layer"], sort=True):
        pool = units[(units["site"] == site) & (units["layer"] == layer)
                     & ~units["neuron"].isin(picked["neuron"])]["neuron"].to_numpy()
        draw = rng.choice(pool, size=min(settings.random_controls, len(pool)), replace=False)
        for rank, neuron in enumerate(sorted(draw), start=1):
            controls.append({"site": site, "layer": int(layer), "neuron": int(neuron),
                             "reason": "random_control", "emotion": None, "rank": rank,
                             "score": np.nan})
    out = pd.concat([chosen, pd.DataFrame(controls, columns=SELECTION_COLUMNS)], ignore_index=True)
    if out.empty:
        notes.append("selection: no unit selected (top_k, explicit and random_controls give none)")
    out = out.astype({"layer": "int32", "neuron": "int32", "rank": "int32"})
    emotion = selectivity.loc[selectivity["factor"] == "emotion", ["site", "layer", "neuron", *CARRIED]]
    out = out.merge(emotion.astype({"layer": "int32", "neuron": "int32"}),
                    on=["site", "layer", "neuron"], how="left")
    return out, notes
