"""The shape every tiny test model shares, whatever its family.

Pure Python, outside :mod:`speechneurons.models` (whose package imports
torch): the Snakefile reads it to check the layers and neurons a config asks
of a tiny model before the workflow has built it.
"""

from __future__ import annotations

#: hidden 32, 2 transformer layers, feed-forward width 64, a CNN front end of width 32
TINY_SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
