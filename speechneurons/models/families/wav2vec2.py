"""wav2vec 2.0 (Baevski et al. 2020): facebook/wav2vec2-base, -large-lv60. Layers return a tensor."""

from speechneurons.models.families.base import Family

FAMILY = Family("wav2vec2", "Wav2Vec2Config", "Wav2Vec2Model")
