"""The knock-out's forward passes: each set's units held at their values inside the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from speechneurons.audio import load_waveform
from speechneurons.datasets.spec import SPEAKER
from speechneurons.models import SpeechModel
from speechneurons.models.units import intervene


def knocked_activations(model: SpeechModel, clips: pd.DataFrame, dataset_root: str | Path,
                        sets: pd.DataFrame, progress: bool = True) -> dict[str, np.ndarray]:
    """set_id -> [clips, units] pooled means of hidden layers L..last with that set knocked out.

    Rows follow ``clips`` restricted to the set's held-out speakers (a set
    is never run on the speakers that chose it); columns run layer by
    layer, neuron by neuron (``knocked_units``). One forward pass per clip
    and set.
    """
    out = {s: [] for s in sets["set_id"]}
    speakers = clips[SPEAKER].astype(str).to_numpy()
    runs = sum(int(np.isin(speakers, list(s.held_out)).sum()) for s in sets.itertuples(index=False))
    bar = tqdm(total=runs, desc="knock-out", unit="forward", disable=not progress)
    for clip, speaker in zip(clips.itertuples(index=False), speakers):
        mine = [s for s in sets.itertuples(index=False) if speaker in set(s.held_out)]
        if not mine:
            continue
        wave = torch.from_numpy(load_waveform(Path(dataset_root) / clip.path, model.sample_rate))
        wave = wave[None].to(model.device)
        for s in mine:
            wanted = [("hidden", k) for k in range(s.layer, model.num_layers + 1)]
            with torch.inference_mode(), intervene(
                    model.family, model.model, "hidden", s.layer, torch.tensor(list(s.neurons), dtype=torch.long),
                    torch.tensor(list(s.values), dtype=torch.float32, device=model.device)):
                got = model.read(wave, wanted)
            out[s.set_id].append(torch.cat([got[w][0].mean(dim=0) for w in wanted]).cpu().numpy())
            bar.update()
    bar.close()
    return {k: np.vstack(v).astype(np.float32) if v else np.zeros((0, 0), np.float32)
            for k, v in out.items()}
