"""What the workflow must know about one wav2vec2-family architecture: the base class.

All supported families share most of the layout the workflow reads: a CNN
front end whose strides give the hop, ``encoder.layers`` of transformer
layers, a feed-forward block with ``feed_forward.intermediate_dropout`` right
after the activation (the ``ffn`` units), and ``encoder.layer_norm``.
:class:`Family` reads that layout; a family's own file subclasses it and
overrides a hook method where the family differs (s3prl's upstream experts:
a family owns its hooks). What can differ:

- where each unit lives: :meth:`Family.encoder_layers` and
  :meth:`Family.site_module`;
- what an encoder layer returns: a plain tensor [batch, frames, hidden]
  (HuBERT, wav2vec 2.0, data2vec-audio in transformers 5), or a tuple
  ``(hidden, position_bias)`` (WavLM, whose file overrides
  :meth:`Family.layer_hidden` and :meth:`Family.with_layer_hidden`). A layer
  that returns another kind than its family declares fails loudly.
- where the encoder's layer norm sits. Post-norm models (every Base) apply it
  to the input of the first layer; *stable-layer-norm* models (every Large,
  ``do_stable_layer_norm``) apply it after the last layer. transformers 5
  records ``hidden_states`` with hooks on the encoder layers, so there
  ``hidden_states[L]`` is the last layer's output *before* that norm and only
  ``last_hidden_state`` has it (transformers 4 put the normed value in
  ``hidden_states[L]``). The workflow's hidden layer L is ``hidden_states[L]``
  of the installed transformers; a test pins the layout, so an upgrade that
  changes it fails loudly.

Each family's file (``families/wavlm.py``, ``families/hubert.py``, ...)
declares ``FAMILY``, an instance of :class:`Family` or of its subclass, with
its ``model_type``, its transformers classes and the extra arguments of a
tiny seeded config for the demo and the tests; :mod:`speechneurons.models.families`
finds the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from speechneurons.tiny_shape import TINY_SHAPE

#: where a (site, layer) is read on its module: the input of the module, or its output
Where = Literal["input", "output"]


@dataclass(frozen=True)
class Family:
    """One architecture: its HF ``model_type``, classes, tiny-config arguments and layout hooks."""

    model_type: str
    config_class: str  # in transformers, e.g. "WavLMConfig"
    model_class: str  # e.g. "WavLMModel"
    tiny_arguments: dict[str, Any] = field(default_factory=dict)
    stable_layer_norm_available: bool = True

    def tiny_config(self, stable_layer_norm: bool = False):
        """A seeded-size config of this family: TINY_SHAPE plus the family's own arguments."""
        import transformers

        if stable_layer_norm and not self.stable_layer_norm_available:
            raise ValueError(f"{self.model_type} has no stable-layer-norm variant")
        arguments = {**TINY_SHAPE, **self.tiny_arguments}
        if self.stable_layer_norm_available:
            arguments |= {"do_stable_layer_norm": stable_layer_norm,
                          "feat_extract_norm": "layer" if stable_layer_norm else "group"}
        return getattr(transformers, self.config_class)(**arguments)

    def model_from_config(self, config) -> torch.nn.Module:
        import transformers

        return getattr(transformers, self.model_class)(config)

    # -- the layout: hook methods a family's file overrides where it differs --------------------

    def encoder_layers(self, model: torch.nn.Module) -> torch.nn.ModuleList:
        """The transformer layers, first to last (hidden layer k is the output of the k-th)."""
        return model.encoder.layers

    def site_module(self, model: torch.nn.Module, site: str, layer: int) -> tuple[torch.nn.Module, Where]:
        """(module, where): the module whose input or output holds (site, layer).

        hidden 0: the input of the first transformer layer; hidden k >= 1: the
        output of transformer layer k (:meth:`layer_hidden` unpacks it); ffn k:
        the output of the dropout right after layer k's feed-forward activation.
        """
        layers = self.encoder_layers(model)
        if site == "hidden":
            return (layers[0], "input") if layer == 0 else (layers[layer - 1], "output")
        if site == "ffn":
            return layers[layer - 1].feed_forward.intermediate_dropout, "output"
        raise ValueError(f"site {site!r} is not hidden or ffn")

    def layer_hidden(self, output) -> torch.Tensor:
        """[batch, frames, hidden] from what an encoder layer returns (here: a tensor)."""
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"a {self.model_type} encoder layer returned {type(output).__name__}, not the "
                            "tensor its family file declares: the installed transformers changed the layout")
        return output

    def with_layer_hidden(self, output, hidden: torch.Tensor):
        """What an encoder layer returns, its hidden states replaced by ``hidden`` (same kind).

        ``hidden`` may hold n times the rows of ``output`` (variants of one clip that the deeper
        layers compute in one batch); whatever else the layer returns is repeated to match.
        """
        self.layer_hidden(output)
        return hidden

    def front_end(self, model: torch.nn.Module) -> list[tuple[torch.nn.Module, str]]:
        """The modules below the transformer that a pass started at a cached hidden state can
        skip, each with what it returns: ``"features"`` ([batch, conv channels, frames], the CNN
        feature encoder) or ``"like_input"`` (the positional convolution, added to its input)."""
        return [(model.feature_extractor, "features"), (model.encoder.pos_conv_embed, "like_input")]

    def unpack(self, site: str, layer: int, value) -> torch.Tensor:
        """[batch, frames, width] from the value the hook of :meth:`site_module` sees."""
        return self.layer_hidden(value) if site == "hidden" and layer > 0 else value

    def repack(self, site: str, layer: int, value, tensor: torch.Tensor):
        """``value`` (what the hook sees) with its [batch, frames, width] replaced by ``tensor``
        ([n x batch, frames, width] for variants run as one batch: :meth:`with_layer_hidden`)."""
        return self.with_layer_hidden(value, tensor) if site == "hidden" and layer > 0 else tensor
