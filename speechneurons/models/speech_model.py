"""One small adapter per model family: load by hub name, revision or folder.

:class:`SpeechModel` wraps a Hugging Face wav2vec2-family encoder (WavLM,
HuBERT, wav2vec 2.0, data2vec-audio; :mod:`speechneurons.models.families`)
with the normalisation its feature extractor applies, and exposes the hidden
states the workflow studies. Layer numbering: hidden layer ``k`` is ``hidden_states[k]`` of the
HF model; 0 is what enters the first transformer layer, ``k >= 1`` is the
output of transformer layer ``k`` (``encoder.layers[k - 1]``). The original
guide's ``layer_idx`` L is hidden layer L + 1.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from speechneurons.audio import MODEL_SAMPLE_RATE
from speechneurons.models.families import Family, family_of
from speechneurons.models.units import SITES, Site, check_site_layer, intervene, run_until_captured, site_width


class ModelLoadError(RuntimeError):
    """The model named in the config could not be loaded; says which key and why."""


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; anything else as torch spells it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"compute.device={device!r} but torch sees no CUDA device")
    return resolved


@dataclass
class SpeechModel:
    """A loaded encoder plus what the workflow needs to know about it."""

    model: torch.nn.Module
    name_or_path: str
    revision: str | None
    do_normalize: bool
    sample_rate: int
    device: torch.device
    family: Family
    #: SAE per layer of ``sae_site`` (:func:`speechneurons.sae_site.attach_saes`): the ``sae`` site
    saes: dict[int, torch.nn.Module] = field(default_factory=dict)
    sae_site: str = "hidden"

    @property
    def num_layers(self) -> int:
        """Number of transformer layers; hidden layers run 0..num_layers."""
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def hop_samples(self) -> int:
        """Samples per output frame: the product of the CNN strides (320)."""
        return int(math.prod(self.model.config.conv_stride))

    def normalize(self, waveform: torch.Tensor) -> torch.Tensor:
        """[batch, samples] -> [batch, samples], as the feature extractor would.

        Wav2Vec2FeatureExtractor with ``do_normalize`` scales each clip to zero
        mean and unit variance (``(x - mean) / sqrt(var + 1e-7)``). Done in
        torch so that ablations are applied to the audio *before* it, the way
        a perturbed recording would reach the model.
        """
        if not self.do_normalize:
            return waveform
        mean = waveform.mean(dim=-1, keepdim=True)
        var = waveform.var(dim=-1, keepdim=True, unbiased=False)
        return (waveform - mean) / torch.sqrt(var + 1e-7)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_samples

    def width(self, site: str) -> int:
        """Units per layer of ``site`` (hidden_size, intermediate_size or the SAEs' latents)."""
        if site == "sae":
            if not self.saes:
                raise ValueError("site sae: no SAE is attached (sae.enabled, and a trained SAE per sae.layers)")
            return int(next(iter(self.saes.values())).latents)
        return site_width(self.model.config, site)

    def sae_layers(self) -> list[int]:
        """Layers of the ``sae`` site: those with an attached SAE."""
        return sorted(self.saes)

    def check_site_layer(self, site: str, layer: int, key: str) -> None:
        """Raise ValueError naming ``key`` when (site, layer) has no units in this model."""
        if site not in SITES:
            raise ValueError(f"{key}: site {site!r} is not one of {list(SITES)}")
        if site != "sae":
            check_site_layer(self.model.config, site, layer, key)
        elif layer not in self.saes:
            raise ValueError(f"{key}: sae layer {layer} has no trained SAE (layers with one: "
                             f"{self.sae_layers()}); list it in sae.layers, or see the SAE page for why "
                             "its training was skipped")

    def read(self, waveform: torch.Tensor, sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
        """Raw audio [batch, samples] -> {(site, layer): [batch, frames, width]}.

        Runs the encoder only as deep as the deepest asked (site, layer). An (``sae``, L) unit
        is latent j of the attached SAE's code of (``sae_site``, L), encoded in the same pass.
        """
        sites = list(dict.fromkeys(sites))
        codes = [layer for site, layer in sites if site == "sae"]
        for layer in codes:
            self.check_site_layer("sae", layer, "units")
        needed = list(dict.fromkeys([s for s in sites if s[0] != "sae"] + [(self.sae_site, k) for k in codes]))
        got = run_until_captured(self.family, self.model, self.normalize(waveform), needed)
        for layer in codes:
            got[("sae", layer)] = self.saes[layer].encode(got[(self.sae_site, layer)])
        return {s: got[s] for s in sites}

    @contextmanager
    def intervene(self, site: str, layer: int, neurons: Sequence[torch.Tensor],
                  values: Sequence[torch.Tensor]) -> Iterator[None]:
        """Knock-out variants inside the model (:func:`speechneurons.models.units.intervene`):
        variant i sets units ``neurons[i]`` of (site, layer) to ``values[i]``. At site ``sae``
        the attached SAE's latents are set and decoded into (``sae_site``, layer), keeping the
        reconstruction error."""
        self.check_site_layer(site, layer, "knockout")
        if site == "sae":
            with intervene(self.family, self.model, self.sae_site, layer, neurons, values, self.saes[layer]):
                yield
        else:
            with intervene(self.family, self.model, site, layer, neurons, values):
                yield

    def hidden_states(self, waveform: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """Raw audio [batch, samples] -> one [batch, frames, hidden] per asked hidden layer."""
        got = self.read(waveform, [("hidden", k) for k in layers])
        return [got[("hidden", k)] for k in layers]


def load_speech_model(
    name_or_path: str, revision: str | None = None, device: str = "cpu"
) -> SpeechModel:
    """Load a model and its feature extractor through ``from_pretrained``.

    ``name_or_path`` is a hub name (``microsoft/wavlm-base-plus``, with
    ``revision`` a commit or tag) or a local folder written by
    ``save_pretrained``. ``HF_HUB_OFFLINE=1`` is honoured by transformers:
    only the local cache is read.
    """
    from transformers import AutoFeatureExtractor, AutoModel

    kwargs = {"revision": revision} if revision else {}
    try:
        model = AutoModel.from_pretrained(name_or_path, **kwargs)
        extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "0")
        raise ModelLoadError(
            f"model.name_or_path={name_or_path!r} (model.revision={revision!r}) could not "
            f"be loaded (HF_HUB_OFFLINE={offline}): {err}. Give a local folder written by "
            "save_pretrained, or a hub name that is in the local cache or reachable."
        ) from err
    try:
        family = family_of(model.config.model_type, str(name_or_path))
    except ValueError as err:
        raise ModelLoadError(str(err)) from err
    rate = int(getattr(extractor, "sampling_rate", MODEL_SAMPLE_RATE))
    if rate != MODEL_SAMPLE_RATE:
        raise ModelLoadError(
            f"model.name_or_path={name_or_path!r} expects {rate} Hz audio; "
            f"the workflow decodes to {MODEL_SAMPLE_RATE} Hz"
        )
    target = resolve_device(device)
    model = model.to(target).eval()
    return SpeechModel(
        model=model,
        name_or_path=str(name_or_path),
        revision=revision,
        do_normalize=bool(getattr(extractor, "do_normalize", False)),
        sample_rate=rate,
        device=target,
        family=family,
    )
