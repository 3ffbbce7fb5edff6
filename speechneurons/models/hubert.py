"""HuBERT (Hsu et al. 2021): facebook/hubert-base-ls960, -large-ll60k. Layers return a tensor."""

from speechneurons.models.family import Family

FAMILY = Family("hubert", "HubertConfig", "HubertModel")
