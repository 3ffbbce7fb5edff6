"""WavLM (Chen et al. 2022): microsoft/wavlm-base, -base-plus, -large.

Its encoder layers return a tuple ``(hidden, position_bias)``: the relative
position bias that the first layer computes travels to the next ones, so a
hook reads the hidden states from the tuple and a knock-out puts them back
into it with the bias unchanged. The bias is [batch x heads, frames, frames]:
when a knock-out turns one clip into n variants, it is repeated n times.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechneurons.models.families.base import Family


@dataclass(frozen=True)
class WavLMFamily(Family):
    """WavLM: encoder layers return (hidden, position_bias)."""

    def layer_hidden(self, output) -> torch.Tensor:
        if not (isinstance(output, tuple) and isinstance(output[0], torch.Tensor)):
            raise TypeError(f"a wavlm encoder layer returned {type(output).__name__}, not the (hidden, "
                            "position_bias) tuple its family file declares: the installed transformers "
                            "changed the layout")
        return output[0]

    def with_layer_hidden(self, output, hidden: torch.Tensor):
        rows = self.layer_hidden(output).shape[0]
        copies = hidden.shape[0] // rows
        if copies * rows != hidden.shape[0]:
            raise ValueError(f"{hidden.shape[0]} rows do not repeat the layer's {rows}")
        bias = output[1]
        if copies > 1 and bias is not None:  # [rows x heads, T, T] -> [copies x rows x heads, T, T]
            bias = bias.repeat(copies, 1, 1)
        return (hidden, bias, *output[2:])


FAMILY = WavLMFamily("wavlm", "WavLMConfig", "WavLMModel",
                     tiny_arguments={"num_buckets": 32, "max_bucket_distance": 64})
