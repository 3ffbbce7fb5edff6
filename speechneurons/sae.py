"""Sparse autoencoders on a layer's frames: features as units (issue 24, first part).

A TopK sparse autoencoder (Gao et al. 2024, "Scaling and evaluating sparse
autoencoders") rewrites each frame x [width] of one (site, layer) as a
sparse, non-negative code z [latents] with exactly ``k`` active latents and
a dictionary of unit-norm decoder columns::

    pre = W_enc (x - b_pre) + b_enc          [latents]
    z   = ReLU(TopK_k(pre))                  [latents], k non-zero at most
    x^  = W_dec z + b_pre                    [width]

Training minimises the mean squared error on frames of the *training*
speakers only (the selection's speakers never see the held-out ones), with
Gao et al.'s auxiliary loss (AuxK: the residual reconstructed from the top
``2 k`` of the latents that have not fired for ``dead_after`` frames, weight
1/32) so that latents do not die; the decoder's columns are kept at unit
norm. It stops early when the fraction of variance explained on held-out
speakers' frames has not improved for ``patience`` evaluations, and keeps
the best state.

No library fits here: SAELens trains on TransformerLens language models
(with their activation stores and a large dependency tree), overcomplete
pulls in torchvision, timm and OpenCV; the module below is the method in
80 lines, tested on a planted dictionary (tests/test_sae.py).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from speechneurons.settings import FromConfig

log = logging.getLogger(__name__)

#: share of frames a latent must fire on to count as dense
DENSE_SHARE = 0.1
#: decoder cosine above which a latent of one seed counts as found again by another
STABLE_COSINE = 0.7


@dataclass(frozen=True)
class SAESettings(FromConfig):
    """How an SAE is trained (the ``sae`` section of the config).

    latents: dictionary size; k: active latents per frame; learning_rate:
    Adam's; steps: at most this many batches of ``batch_frames`` frames;
    eval_every, patience: early stopping on held-out speakers' frames;
    max_frames: the frame sample trained on (drawn with ``seed``);
    dead_after: frames without firing that make a latent dead for AuxK.
    """

    SECTION: ClassVar[str] = "sae"

    latents: int = 4096
    k: int = 32
    learning_rate: float = 4e-4
    steps: int = 20_000
    batch_frames: int = 4096
    eval_every: int = 500
    patience: int = 4
    max_frames: int = 500_000
    dead_after: int = 1_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.k < self.latents:
            raise ValueError(f"sae.k ({self.k}) must be above 0 and below sae.latents ({self.latents})")


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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


@torch.no_grad()
def variance_explained(sae: TopKSAE, frames: torch.Tensor, batch: int = 8192) -> float:
    """1 - sum |x - x^|^2 / sum |x - mean x|^2 over ``frames`` [frames, width]."""
    mean = frames.mean(dim=0)
    error = total = 0.0
    for start in range(0, len(frames), batch):
        x = frames[start:start + batch]
        error += float(((sae(x)[0] - x) ** 2).sum())
        total += float(((x - mean) ** 2).sum())
    return 1.0 - error / total if total > 0 else float("nan")


def _aux_loss(sae: TopKSAE, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor, dead: torch.Tensor
              ) -> torch.Tensor:
    """Gao et al.'s AuxK: the residual reconstructed from the top 2 k dead latents, relative to the
    residual's own variance (0 when no latent is dead)."""
    if not bool(dead.any()):
        return x.new_zeros(())
    k_aux = min(2 * sae.k, int(dead.sum()))
    masked = pre.masked_fill(~dead, float("-inf"))
    top = masked.topk(k_aux, dim=-1)
    z_aux = torch.zeros_like(pre).scatter_(-1, top.indices, top.values.relu())
    residual = (x - x_hat.detach()) / sae.scale
    denominator = ((residual - residual.mean(dim=0)) ** 2).sum(dim=-1).mean().clamp_min(1e-12)
    return ((z_aux @ sae.W_dec.t() - residual) ** 2).sum(dim=-1).mean() / denominator


def train_sae(train: torch.Tensor, held_out: torch.Tensor, settings: SAESettings,
              progress: bool = False) -> tuple[TopKSAE, dict]:
    """A TopK SAE trained on ``train`` [frames, width] (training speakers' frames), stopped early
    on ``held_out`` [frames, width] (other speakers'). Returns (the best SAE by held-out variance
    explained, its training record: steps run, best step, the held-out curve, seconds)."""
    import time

    from tqdm import tqdm

    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    if len(train) > settings.max_frames:
        train = train[torch.randperm(len(train), generator=generator)[:settings.max_frames]]
    train = train.float()
    held_out = held_out.float()
    scale = float(train.pow(2).sum(dim=1).mean().sqrt() / math.sqrt(train.shape[1])) or 1.0
    sae = TopKSAE(train.shape[1], settings.latents, settings.k, scale)
    with torch.no_grad():
        sae.b_pre.copy_(train.mean(dim=0) / scale)
    optimiser = torch.optim.Adam(sae.parameters(), lr=settings.learning_rate)
    since_fired = torch.zeros(settings.latents)
    best, best_state, best_step, curve, stale = -math.inf, None, 0, [], 0
    start = time.perf_counter()
    steps = tqdm(range(1, settings.steps + 1), desc="sae", unit="step", disable=not progress)
    for step in steps:
        batch = train[torch.randint(len(train), (min(settings.batch_frames, len(train)),), generator=generator)]
        pre = sae.pre_activations(batch)
        top = pre.topk(sae.k, dim=-1)
        z = torch.zeros_like(pre).scatter_(-1, top.indices, top.values.relu())
        x_hat = sae.decode(z)
        loss = ((x_hat - batch) / sae.scale).pow(2).sum(dim=-1).mean() / sae.width
        fired = (z > 0).any(dim=0)
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + len(batch))
        loss = loss + _aux_loss(sae, batch, x_hat, pre, since_fired > settings.dead_after) / 32
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():  # keep only the part of each column's gradient that leaves its norm alone
            w = sae.W_dec
            w.grad -= (w.grad * w).sum(dim=0, keepdim=True) * w
        optimiser.step()
        sae.normalise_decoder()
        if step % settings.eval_every == 0 or step == settings.steps:
            fve = variance_explained(sae, held_out)
            curve.append((step, fve))
            steps.set_postfix(held_out_fve=f"{fve:.3f}")
            if fve > best:
                best, best_step, stale = fve, step, 0
                best_state = {k: v.detach().clone() for k, v in sae.state_dict().items()}
            else:
                stale += 1
                if stale >= settings.patience:
                    break
    if best_state is not None:
        sae.load_state_dict(best_state)
    record = {"steps_run": step, "best_step": best_step, "held_out_fve": curve,
              "seconds": time.perf_counter() - start, "train_frames": len(train), "held_out_frames": len(held_out)}
    log.info("SAE: %d steps, best held-out FVE %.4f at step %d", step, best, best_step)
    return sae, record


@torch.no_grad()
def sae_quality(sae: TopKSAE, frames: torch.Tensor, batch: int = 8192) -> dict:
    """How far to trust one SAE, on held-out speakers' ``frames`` [frames, width]: fve (fraction of
    variance explained), l0 (mean active latents per frame), dead_share (latents that never fire),
    dense_share (latents firing on more than :data:`DENSE_SHARE` of the frames)."""
    fires = torch.zeros(sae.latents)
    active = 0.0
    for start in range(0, len(frames), batch):
        z = sae.encode(frames[start:start + batch].float())
        fires += (z > 0).sum(dim=0)
        active += float((z > 0).sum())
    rate = fires / max(len(frames), 1)
    return {"fve": variance_explained(sae, frames.float(), batch), "l0": active / max(len(frames), 1),
            "dead_share": float((rate == 0).float().mean()), "dense_share": float((rate > DENSE_SHARE).float().mean())}


def seed_stability(a: TopKSAE, b: TopKSAE, threshold: float = STABLE_COSINE) -> dict:
    """Latents of two SAEs (two seeds) matched one to one by decoder cosine (the Hungarian
    assignment, scipy's linear_sum_assignment): the share of ``a``'s latents whose match has
    cosine above ``threshold``, and the median matched cosine."""
    from scipy.optimize import linear_sum_assignment

    cosine = (a.W_dec.detach().t() @ b.W_dec.detach()).numpy()  # unit columns: [latents_a, latents_b]
    rows, cols = linear_sum_assignment(-cosine)
    matched = cosine[rows, cols]
    return {"stable_share": float((matched > threshold).mean()), "median_cosine": float(np.median(matched)),
            "threshold": threshold}


def save_sae(sae: TopKSAE, path: str | Path, provenance: dict) -> None:
    """The SAE's tensors (safetensors, written whole or not at all), with its shape and
    ``provenance`` (settings, training record, what it was trained on) as JSON in the metadata."""
    from speechneurons.atomic import save_arrays

    meta = {"shape": json.dumps({"width": sae.width, "latents": sae.latents, "k": sae.k}),
            "provenance": json.dumps(provenance, default=str)}
    save_arrays({k: v.detach().cpu().contiguous().numpy() for k, v in sae.state_dict().items()}, path, meta)


def load_sae(path: str | Path) -> tuple[TopKSAE, dict]:
    """(the SAE, its provenance) from a file :func:`save_sae` wrote."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        tensors = {k: torch.from_numpy(f.get_tensor(k)) for k in f.keys()}
    shape = json.loads(meta["shape"])
    sae = TopKSAE(shape["width"], shape["latents"], shape["k"])
    sae.load_state_dict(tensors)
    return sae, json.loads(meta["provenance"])


def settings_record(settings: SAESettings) -> dict:
    """The settings as a plain dict (for provenance)."""
    return asdict(settings)
