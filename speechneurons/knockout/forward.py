"""The knock-out's forward passes: each set's units held at their values inside the model."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.audio import load_waveform
from speechneurons.datasets.spec import SPEAKER
from speechneurons.models import SpeechModel
from speechneurons.models.memory import run_halving


def knocked_layer(model: SpeechModel, wave: torch.Tensor, site: str, layer: int, sets: list, batch: int
                  ) -> np.ndarray:
    """[len(sets), units] pooled means of hidden layers ``layer``..last of one clip ([1, samples]),
    each row with one set (``neurons``, ``values``; all at (``site``, ``layer``): hidden units, or
    latents of hidden ``layer``'s SAE) knocked out.

    The clip runs once up to ``layer``; the sets run from there as batches of at most ``batch``.
    """
    wanted = [("hidden", k) for k in range(layer, model.num_layers + 1)]
    rows = []
    for start in range(0, len(sets), batch):
        chunk = sets[start:start + batch]
        neurons = [torch.tensor(list(s.neurons), dtype=torch.long, device=model.device) for s in chunk]
        values = [torch.tensor(list(s.values), dtype=torch.float32, device=model.device) for s in chunk]
        with torch.inference_mode(), model.intervene(site, layer, neurons, values):
            got = model.read(wave, wanted)
        rows.append(torch.cat([got[w].mean(dim=1) for w in wanted], dim=1).cpu().numpy())
    return np.vstack(rows)


def knocked_activations(model: SpeechModel, clips: pd.DataFrame, dataset_root: str | Path,
                        sets: pd.DataFrame, batch: int = 16, progress: bool = True) -> dict[str, np.ndarray]:
    """set_id -> [clips, units] pooled means of hidden layers L..last with that set knocked out.

    Rows follow ``clips`` restricted to the set's held-out speakers (a set
    is never run on the speakers that chose it); columns run layer by
    layer, neuron by neuron (``knocked_units``). One forward pass per clip
    and knocked layer: the layers below it run once, and the layer's sets
    run above it in batches of at most ``batch`` (halved on running out of
    memory, logged; the result does not depend on it).
    """
    out: dict[str, list[np.ndarray]] = {s: [] for s in sets["set_id"]}
    speakers = clips[SPEAKER].astype(str).to_numpy()
    runs = sum(int(np.isin(speakers, list(s.held_out)).sum()) for s in sets.itertuples(index=False))
    bar = tqdm(total=runs, desc="knock-out", unit="set", disable=not progress)
    by_layer = sorted(sets.itertuples(index=False), key=lambda s: (s.layer, s.site))
    for clip, speaker in zip(clips.itertuples(index=False), speakers):
        mine = [s for s in by_layer if speaker in set(s.held_out)]
        if not mine:
            continue
        wave = torch.from_numpy(load_waveform(Path(dataset_root) / clip.path, model.sample_rate))
        wave = wave[None].to(model.device)
        for (layer, site), group in groupby(mine, key=lambda s: (s.layer, s.site)):
            group = list(group)
            pooled, batch = run_halving(lambda size: knocked_layer(model, wave, site, int(layer), group, size),
                                        batch, model.device, "compute.perturbations_per_eval (knock-out sets)")
            for s, row in zip(group, pooled, strict=True):
                out[s.set_id].append(row)
            bar.update(len(group))
    bar.close()
    return {k: np.vstack(v).astype(np.float32) if v else np.zeros((0, 0), np.float32)
            for k, v in out.items()}
