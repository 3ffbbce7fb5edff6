"""The ``sae`` site: a layer's frames rewritten as sparse-autoencoder latents, read and set inside
the model's forward pass.

An SAE trained on (``sae.site``, layer L) (:mod:`speechneurons.sae` trains it) makes unit
(``sae``, L, j) = latent j of the code of that layer's frames. Attached to a
:class:`~speechneurons.models.SpeechModel` (:func:`attach_saes`), the site is read like any
other: ``SpeechModel.read`` captures (``sae.site``, L) and encodes it, inside the same forward
pass, so the activation cache, the ablation engine (whose Captum forward function is that read)
and the knock-out see latents as units. Knocking latents out (:meth:`TopKSAE.decode_change`)
changes the layer by the decoded change of the code only: the SAE's reconstruction error stays,
so that every other feature of the frame is left as it was.

This module holds what every job that reads the site needs (the SAE and its file); the
training, quality and stability are in :mod:`speechneurons.sae`, which only ``sae_train`` imports.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

log = logging.getLogger(__name__)


class UntrainedSAE(ValueError):
    """The file of a layer whose SAE could not be trained (a thin design), with the reason."""


class TopKSAE(nn.Module):
    """A TopK sparse autoencoder of ``width``-dimensional frames with ``latents`` latents.

    ``scale``: a frame is divided by it before encoding and the
    reconstruction multiplied by it after (it makes the mean squared norm
    of the training frames ``width``, so that one learning rate fits every
    layer); ``b_pre`` is in those scaled units.
    """

    def __init__(self, width: int, latents: int, k: int, scale: float = 1.0):
        super().__init__()
        self.width, self.latents, self.k = width, latents, k
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.b_pre = nn.Parameter(torch.zeros(width))
        self.W_dec = nn.Parameter(torch.randn(width, latents) / math.sqrt(width))
        self.normalise_decoder()
        self.W_enc = nn.Parameter(self.W_dec.detach().t().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(latents))

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Every decoder column (a latent's direction) to unit norm."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """[frames, width] (raw units) -> [frames, latents] before TopK."""
        return (x / self.scale - self.b_pre) @ self.W_enc.t() + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[frames, width] -> [frames, latents] codes, ``k`` non-zero at most per frame."""
        pre = self.pre_activations(x)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, top.values.relu())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[frames, latents] -> [frames, width] in raw units."""
        return (z @ self.W_dec.t() + self.b_pre) * self.scale

    def decode_change(self, dz: torch.Tensor) -> torch.Tensor:
        """[..., latents] change of the code -> [..., width] change of the reconstruction (raw
        units): ``decode(z + dz) - decode(z)``, without the bias that cancels."""
        return (dz @ self.W_dec.t()) * self.scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


def sae_device(device: str) -> torch.device:
    """``compute.device`` for the SAE jobs: ``auto`` is CUDA when torch sees it, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_sae(path: str | Path) -> tuple[TopKSAE, dict]:
    """(the SAE, its provenance) from a file :func:`save_sae` wrote (ValueError with the reason
    for one :func:`save_untrained` wrote)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        if "untrained" in meta:
            raise UntrainedSAE(f"{path}: holds no SAE: {meta['untrained']}")
        tensors = {k: torch.from_numpy(f.get_tensor(k)) for k in f.keys()}
    shape = json.loads(meta["shape"])
    sae = TopKSAE(shape["width"], shape["latents"], shape["k"])
    sae.load_state_dict(tensors)
    return sae, json.loads(meta["provenance"])


def attach_saes(model, site: str, layers: Sequence[int], paths: Sequence[str | Path]) -> None:
    """Load the SAE file of each of ``layers`` (of ``site``; ``paths`` in the same order) onto
    ``model``'s (a :class:`~speechneurons.models.SpeechModel`; not imported here, so that the SAE
    training job depends on no model code) device and attach it: ``model.read`` then gives (``sae``, layer) units. A layer
    whose file holds no SAE (:class:`UntrainedSAE`) gets no ``sae`` units (logged)."""
    if len(layers) != len(paths):
        raise ValueError(f"sae.layers lists {len(layers)} layers but {len(paths)} SAE files were given")
    for layer, path in zip(layers, paths):
        try:
            sae, _ = load_sae(path)
        except UntrainedSAE as why:
            log.warning("sae layer %d has no units: %s", layer, why)
            continue
        width = model.width(site)
        if sae.width != width:
            raise ValueError(f"{path}: an SAE of {sae.width}-wide frames, but {site} layer {layer} of "
                             f"{model.name_or_path} has {width} units; rerun sae_train for this model")
        model.saes[int(layer)] = sae.to(model.device).eval()
    model.sae_site = site
