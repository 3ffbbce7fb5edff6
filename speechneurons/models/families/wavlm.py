"""WavLM (Chen et al. 2022): microsoft/wavlm-base, -base-plus, -large.

Its encoder layers return a tuple ``(hidden, position_bias)``: the relative
position bias that the first layer computes travels to the next ones, so a
hook reads the hidden states from the tuple and a knock-out puts them back
into it with the bias unchanged.
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
        self.layer_hidden(output)
        return (hidden, *output[1:])


FAMILY = WavLMFamily("wavlm", "WavLMConfig", "WavLMModel",
                     tiny_arguments={"num_buckets": 32, "max_bucket_distance": 64})
