"""data2vec-audio (Baevski et al. 2022): facebook/data2vec-audio-base, -large. Post-norm only.

Its positional convolution is a stack of small convolutions, so the tiny
config sets their kernel and count instead of one wide kernel.
"""

from speechneurons.models.families.base import Family

FAMILY = Family("data2vec-audio", "Data2VecAudioConfig", "Data2VecAudioModel",
                tiny_arguments={"num_conv_pos_embeddings": 5, "conv_pos_kernel_size": 5},
                stable_layer_norm_available=False)
