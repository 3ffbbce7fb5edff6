"""Training sparse autoencoders on a layer's frames, and judging them: features as units.

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
pulls in torchvision, timm and OpenCV; the SAE itself
(:class:`speechneurons.sae_site.TopKSAE`, beside how the model jobs read it) and the training
below are the method in about 150 lines, tested on a planted dictionary (tests/test_sae.py).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd
import torch

from speechneurons.datasets.spec import SPEAKER
from speechneurons.sae_site import TopKSAE
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
    dead_after: frames without firing that make a latent dead for AuxK;
    held_out_share: the share of speakers (within each level of the group
    factor) held out for early stopping and the quality numbers.
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
    held_out_share: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.k < self.latents:
            raise ValueError(f"sae.k ({self.k}) must be above 0 and below sae.latents ({self.latents})")
        if not 0 < self.held_out_share < 1:
            raise ValueError(f"sae.held_out_share ({self.held_out_share:g}) must be between 0 and 1")


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
              progress: bool = False, device: torch.device | str = "cpu") -> tuple[TopKSAE, dict]:
    """A TopK SAE trained on ``train`` [frames, width] (training speakers' frames), stopped early
    on ``held_out`` [frames, width] (other speakers'), on ``device``. Returns (the best SAE by
    held-out variance explained, on the CPU; its training record: steps run, best step, the
    held-out curve, seconds). The draws (sample, batches, initial weights) come from CPU
    generators seeded with ``settings.seed``, whatever the device."""
    import time

    from tqdm import tqdm

    device = torch.device(device)
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    if len(train) > settings.max_frames:
        train = train[torch.randperm(len(train), generator=generator)[:settings.max_frames]]
    train = train.float().to(device)
    held_out = held_out.float().to(device)
    scale = float(train.pow(2).sum(dim=1).mean().sqrt() / math.sqrt(train.shape[1])) or 1.0
    sae = TopKSAE(train.shape[1], settings.latents, settings.k, scale)
    with torch.no_grad():
        sae.b_pre.copy_(train.mean(dim=0).cpu() / scale)
    sae = sae.to(device)
    optimiser = torch.optim.Adam(sae.parameters(), lr=settings.learning_rate)
    since_fired = torch.zeros(settings.latents, device=device)
    best, best_state, best_step, curve, stale = -math.inf, None, 0, [], 0
    start = time.perf_counter()
    steps = tqdm(range(1, settings.steps + 1), desc="sae", unit="step", disable=not progress)
    for step in steps:
        batch = train[torch.randint(len(train), (min(settings.batch_frames, len(train)),), generator=generator)
                      .to(device)]
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
    sae = sae.cpu()
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
        z = sae.encode(frames[start:start + batch].float()).cpu()
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


def save_untrained(path: str | Path, why: str, provenance: dict) -> None:
    """The file of a layer whose SAE could not be trained: no tensors, and ``why``."""
    from speechneurons.atomic import save_arrays

    save_arrays({"untrained": np.zeros(0, np.float32)}, path,
                {"untrained": why, "provenance": json.dumps(provenance, default=str)})


class UntrainableLayer(ValueError):
    """The study's speakers leave one side of the SAE's split empty (a thin design): the layer's
    job writes no SAE and says why."""


#: Columns of a layer's quality table (one row per SAE the layer's job trained).
QUALITY_COLUMNS = ["site", "layer", "latents", "k", "fve", "l0", "dead_share", "dense_share", "stable_share",
                   "median_seed_cosine", "train_speakers", "held_out_speakers", "train_frames", "held_out_frames",
                   "steps_run", "best_step"]  # the time it took is in the SAE file's record: tables rerun equal


def held_out_speakers(clips: pd.DataFrame, group: str | None, share: float, seed: int) -> set[str]:
    """About ``share`` of the speakers, drawn with ``seed`` within each level of the ``group``
    factor (at least one of each level with two speakers or more): the SAE never trains on them."""
    rng = np.random.default_rng(seed)
    speakers = clips.drop_duplicates(SPEAKER)
    strata = [speakers] if group is None else [g for _, g in speakers.groupby(speakers[group].astype(str))]
    out: set[str] = set()
    for stratum in strata:
        names = rng.permutation(stratum[SPEAKER].astype(str).to_numpy())
        if len(names) >= 2:
            out |= set(names[:max(1, round(share * len(names)))])
    return out


def read_layer_frames(paths: Sequence[str | Path], site: str, layer: int) -> dict[str, np.ndarray]:
    """{clip_id: [frames, width] float32} of one (site, layer) from the frame shards
    :func:`speechneurons.activations.layer_frames`'s job wrote (:mod:`speechneurons.unit_arrays`
    files)."""
    from safetensors import safe_open

    from speechneurons.unit_arrays import read_units

    out = {}
    for path in paths:
        units = read_units(path)
        rows = np.flatnonzero(((units["site"] == site) & (units["layer"] == layer)).to_numpy())
        if not len(rows):
            raise ValueError(f"{path}: holds no frames of {site} layer {layer} (sae.site, sae.layers)")
        with safe_open(str(path), framework="numpy") as f:
            for clip_id in f.keys():
                out[clip_id] = f.get_tensor(clip_id)[rows].T.astype(np.float32)
    return out


def train_layer(frames: dict[str, np.ndarray], clips: pd.DataFrame, group: str | None, site: str, layer: int,
                settings: SAESettings, progress: bool = True, device: torch.device | str = "cpu"
                ) -> tuple[TopKSAE, pd.DataFrame, dict]:
    """The SAE of one layer: trained on the frames of the speakers :func:`held_out_speakers` does
    not hold out, stopped early and judged on the held-out ones; a second SAE with seed + 1 gives
    the stability across seeds. Returns (the SAE, its quality row (:data:`QUALITY_COLUMNS`), its
    training record with both speaker lists)."""
    held = held_out_speakers(clips, group, settings.held_out_share, settings.seed)
    speaker_of = dict(zip(clips["clip_id"], clips[SPEAKER].astype(str)))
    known = sorted(c for c in frames if c in speaker_of)
    train_ids = [c for c in known if speaker_of[c] not in held]
    held_ids = [c for c in known if speaker_of[c] in held]
    if not train_ids or not held_ids:
        speakers = len({speaker_of[c] for c in known})
        raise UntrainableLayer(
            f"sae: {site} layer {layer} not trained: {speakers} speaker(s) with frames give {len(train_ids)} "
            f"training and {len(held_ids)} held-out clips; the SAE needs speakers to train on and others to "
            "judge it on (two or more per level of the group factor; sae.held_out_share)")
    train = torch.from_numpy(np.concatenate([frames[c] for c in train_ids]))
    held_out = torch.from_numpy(np.concatenate([frames[c] for c in held_ids]))
    sae, record = train_sae(train, held_out, settings, progress, device)
    other, _ = train_sae(train, held_out, SAESettings(**{**asdict(settings), "seed": settings.seed + 1}), progress,
                         device)
    quality, stability = sae_quality(sae, held_out), seed_stability(sae, other)
    row = pd.DataFrame([{
        "site": site, "layer": int(layer), "latents": settings.latents, "k": settings.k, **quality,
        "stable_share": stability["stable_share"], "median_seed_cosine": stability["median_cosine"],
        "train_speakers": len({speaker_of[c] for c in train_ids}), "held_out_speakers": len(held),
        "train_frames": record["train_frames"], "held_out_frames": len(held_out),
        "steps_run": record["steps_run"], "best_step": record["best_step"],
    }])[QUALITY_COLUMNS]
    record.update({"train_speakers": sorted({speaker_of[c] for c in train_ids}), "held_out_speakers": sorted(held)})
    return sae, row, record
