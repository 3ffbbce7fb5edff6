"""HuBERT (Hsu et al. 2021): facebook/hubert-base-ls960, -large-ll60k. Layers return a tensor."""

from speechneurons.models.families.base import Family

FAMILY = Family("hubert", "HubertConfig", "HubertModel")
