"""Unit addressing: read (site, layer) activations with forward hooks, stopping early.

Sites and layer numbering (one vocabulary everywhere):

- ``hidden`` layer 0: what enters the first transformer layer
  (``encoder.layers[0]``'s input: CNN features + positional convolution);
  layer k >= 1: the output of transformer layer k (``encoder.layers[k - 1]``).
  This is ``hidden_states[k]`` of the HF model for every family and both
  layer-norm layouts (tested; see :mod:`speechneurons.models.family` for the
  final norm of stable-layer-norm models).
- ``ffn`` layer k >= 1: the feed-forward units of transformer layer k after
  the activation function (``intermediate_size`` of them, 3,072 in Base).
- ``sae`` layer k: the latents of a sparse autoencoder of hidden (or ffn)
  layer k, encoded from that layer's value in the same forward pass
  (:mod:`speechneurons.sae_site`; :class:`~speechneurons.models.SpeechModel`
  reads and sets them through the hooks below).

The reader hooks exactly the modules it needs and stops the forward pass
(by an exception caught here) right after the deepest one: encoder layers
deeper than the deepest asked unit never run. Where each (site, layer) lives
and how a layer's output is unpacked and repacked is the model family's
(:class:`~speechneurons.models.families.base.Family`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from speechneurons.models.families.base import Family

#: ``sae``: latents of a sparse autoencoder of a hidden or ffn layer (speechneurons.sae_site);
#: :class:`~speechneurons.models.SpeechModel` reads it, the hooks below see only hidden and ffn
SITES = ("hidden", "ffn", "sae")
Site = tuple[str, int]  # (site, layer)


class _StopForward(Exception):
    """Raised by the hook of the deepest asked module to skip the rest of the model."""


def execution_order(site: str, layer: int) -> int:
    """Where a (site, layer) is computed in the forward pass: hidden 0 < ffn 1 < hidden 1 < ..."""
    if site == "hidden":
        return 2 * layer
    if site == "ffn":
        return 2 * layer - 1
    raise ValueError(f"ablation.sites: {site!r} is not one of {SITES}")


def site_width(config, site: str) -> int:
    """Number of units per layer of a site: hidden_size or intermediate_size."""
    return int(config.hidden_size if site == "hidden" else config.intermediate_size)


def check_site_layer(config, site: str, layer: int, key: str = "ablation.layers") -> None:
    """Raise ValueError naming ``key`` when (site, layer) does not exist in the model."""
    execution_order(site, layer)
    lowest = 0 if site == "hidden" else 1
    if not lowest <= layer <= config.num_hidden_layers:
        raise ValueError(
            f"{key}: {site} layer {layer} does not exist ({site} layers run "
            f"{lowest}..{config.num_hidden_layers})"
        )


@contextmanager
def capture(family: Family, model: torch.nn.Module, wanted: Sequence[Site]
            ) -> Iterator[dict[Site, torch.Tensor]]:
    """Hooks on ``model`` (of ``family``) that fill a dict {(site, layer): [batch, frames, width]}
    during a forward pass.

    The deepest wanted module raises ``_StopForward`` once captured; run the
    model through :func:`run_until_captured`.
    """
    wanted = sorted(set(wanted), key=lambda s: execution_order(*s))
    if not wanted:
        raise ValueError("no units asked")
    deepest = wanted[-1]
    store: dict[Site, torch.Tensor] = {}
    handles = []
    for site in wanted:
        module, where = family.site_module(model, *site)

        def keep(value, site=site):
            store[site] = family.unpack(*site, value)
            if site == deepest:
                raise _StopForward

        if where == "input":
            handles.append(module.register_forward_pre_hook(lambda m, args, keep=keep: keep(args[0])))
        else:
            handles.append(module.register_forward_hook(lambda m, a, out, keep=keep: keep(out)))
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def run_until_captured(
    family: Family, model: torch.nn.Module, inputs: torch.Tensor, wanted: Sequence[Site]
) -> dict[Site, torch.Tensor]:
    """Run ``model`` (of ``family``) on model-ready inputs [batch, samples] just far enough for
    ``wanted``."""
    with capture(family, model, wanted) as store:
        try:
            model(inputs)
        except _StopForward:
            pass
    missing = set(wanted) - set(store)
    if missing:
        raise RuntimeError(f"the forward pass never reached {sorted(missing)}")
    return store


@contextmanager
def intervene(family: Family, model: torch.nn.Module, site: str, layer: int,
              neurons: Sequence[torch.Tensor], values: Sequence[torch.Tensor], sae=None) -> Iterator[None]:
    """Knock-out variants in ``model`` (of ``family``): variant i sets units ``neurons[i]`` of
    (site, layer) to ``values[i]`` [len(neurons[i])] at every frame.

    With ``sae`` (a :class:`~speechneurons.sae_site.TopKSAE` of (site, layer)), the units
    are its latents: the frame's code z = encode(x) gets the values at those latents (z'), and
    x becomes x + decode(z') - decode(z) = decode(z') + (x - decode(z)): the reconstruction
    error is kept, and no other latent's contribution changes.

    One variant: every row of the batch gets it. n > 1 variants (site
    ``hidden``): the forward pass runs one clip (batch 1) up to (site, layer),
    whose value [1, frames, width] becomes [n, frames, width], row i with
    variant i applied; the layers below run once and the layers above run the
    n variants as one batch. A forward (pre-)hook registered before any
    reader's hooks, so readers of the same (site, layer) see the knocked-out
    values and deeper layers compute from them (knock-out: zero or the corpus
    mean).
    """
    if len(neurons) != len(values) or not len(neurons):
        raise ValueError(f"{len(neurons)} sets of units and {len(values)} sets of values")
    if len(neurons) > 1 and site != "hidden":
        raise ValueError(f"variants run as one batch at a hidden layer, not at {site} layer {layer}")
    module, where = family.site_module(model, site, layer)

    def replace(value):
        tensor = family.unpack(site, layer, value)
        if len(neurons) > 1 and tensor.shape[0] != 1:
            raise ValueError(f"{len(neurons)} variants of a batch of {tensor.shape[0]}: give one clip")
        out = tensor.repeat(len(neurons), 1, 1) if len(neurons) > 1 else tensor.clone()
        code = None if sae is None else sae.encode(tensor)  # [batch, frames, latents]
        for row, (units, set_to) in enumerate(zip(neurons, values, strict=True)):
            rows = slice(None) if len(neurons) == 1 else row
            if code is None:
                out[rows, :, units] = set_to.to(out.dtype)
                continue
            change = torch.zeros_like(code)
            change[..., units] = set_to.to(code.dtype) - code[..., units]
            out[rows] = out[rows] + sae.decode_change(change).to(out.dtype)[0 if len(neurons) > 1 else slice(None)]
        return family.repack(site, layer, value, out)

    if where == "input":
        handle = module.register_forward_pre_hook(
            lambda m, args: (replace(args[0]), *args[1:]))
    else:
        handle = module.register_forward_hook(lambda m, a, out: replace(out))
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def start_at(family: Family, model: torch.nn.Module, layer: int, hidden: torch.Tensor,
             template=None) -> Iterator[None]:
    """Forward passes of ``model`` (of ``family``) that start at hidden ``layer`` from ``hidden``
    [batch, frames, width] instead of computing it: the front end (:meth:`Family.front_end`)
    returns zeros without running, layers 1..``layer`` return ``hidden`` without running, and
    only the layers above compute. ``template``: what layer ``layer`` returned for one row of
    the same clip (its extra outputs, such as WavLM's position bias, are repeated to the batch);
    unused for layer 0, whose input ``hidden`` becomes. Units at or below ``layer`` read what
    this gives, not the model's values: read only units above it.
    """
    layers = family.encoder_layers(model)
    channels = model.config.conv_dim[-1]
    patched: list[torch.nn.Module] = []

    def check(rows: int) -> None:
        if rows != hidden.shape[0]:
            raise ValueError(f"a batch of {rows} started from {hidden.shape[0]} cached rows")

    def features(values, *args, **kwargs):
        check(values.shape[0])
        return torch.zeros(values.shape[0], channels, hidden.shape[1], dtype=hidden.dtype, device=hidden.device)

    for module, kind in family.front_end(model):
        module.forward = features if kind == "features" else (lambda values, *a, **k: torch.zeros_like(values))
        patched.append(module)
    handle = None
    if layer == 0:
        handle = layers[0].register_forward_pre_hook(lambda m, args: (hidden, *args[1:]))
    else:
        value = family.with_layer_hidden(template, hidden)
        for module in layers[:layer]:
            module.forward = lambda *args, **kwargs: value
            patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward
        if handle is not None:
            handle.remove()
