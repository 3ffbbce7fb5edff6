"""What the workflow must know about one wav2vec2-family architecture.

All supported families share the layout the workflow reads: a CNN front end
whose strides give the hop, ``encoder.layers`` of transformer layers, a
feed-forward block with ``feed_forward.intermediate_dropout`` right after the
activation (the ``ffn`` units), and ``encoder.layer_norm``. Two things
differ, and are never assumed:

- what an encoder layer returns: WavLM a tuple ``(hidden, position_bias)``,
  HuBERT, wav2vec 2.0 and data2vec-audio a plain tensor (transformers 5);
  :func:`layer_output` takes the hidden states from either.
- where the encoder's layer norm sits. Post-norm models (every Base) apply it
  to the input of the first layer; *stable-layer-norm* models (every Large,
  ``do_stable_layer_norm``) apply it after the last layer. transformers 5
  records ``hidden_states`` with hooks on the encoder layers, so there
  ``hidden_states[L]`` is the last layer's output *before* that norm and only
  ``last_hidden_state`` has it (transformers 4 put the normed value in
  ``hidden_states[L]``). The workflow's hidden layer L is ``hidden_states[L]``
  of the installed transformers; a test pins the layout, so an upgrade that
  changes it fails loudly.

Each family's own file (``wavlm.py``, ``hubert.py``, ...) declares a
:class:`Family`: its ``model_type``, its transformers classes and the extra
arguments of a tiny seeded config for the demo and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from speechneurons.tiny_shape import TINY_SHAPE


@dataclass(frozen=True)
class Family:
    """One architecture: its HF ``model_type``, classes, and tiny-config arguments."""

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


def layer_output(output) -> torch.Tensor:
    """[batch, frames, hidden] from an encoder layer's output: a tuple (WavLM) or a tensor."""
    return output[0] if isinstance(output, tuple) else output
