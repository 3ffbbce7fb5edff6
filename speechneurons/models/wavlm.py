"""WavLM (Chen et al. 2022): microsoft/wavlm-base, -base-plus, -large. Layers return (hidden, position_bias)."""

from speechneurons.models.family import Family

FAMILY = Family("wavlm", "WavLMConfig", "WavLMModel",
                tiny_arguments={"num_buckets": 32, "max_bucket_distance": 64})
