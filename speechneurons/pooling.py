"""How the activation cache pools a clip's frames into one row per unit (torch only).

Shared by the activation pass (:mod:`speechneurons.activations`) and the SAE
latents (:mod:`speechneurons.sae_latents`), so that every unit of the cache is
pooled the same way.
"""

from __future__ import annotations

import numpy as np
import torch


def pool_frames(values: torch.Tensor) -> dict[str, np.ndarray]:
    """[frames, units] -> mean, std (population) and max over frames, each [units]."""
    return {
        "mean": values.mean(dim=0).cpu().numpy(),
        "std": values.std(dim=0, unbiased=False).cpu().numpy(),
        "max": values.max(dim=0).values.cpu().numpy(),
    }
