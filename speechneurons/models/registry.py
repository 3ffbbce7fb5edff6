"""The supported model families by HF ``model_type``: one line per family file."""

from __future__ import annotations

from speechneurons.models import data2vec_audio, hubert, wav2vec2, wavlm
from speechneurons.models.family import Family

FAMILIES: dict[str, Family] = {f.model_type: f for f in (
    wavlm.FAMILY, hubert.FAMILY, wav2vec2.FAMILY, data2vec_audio.FAMILY)}


def family_of(model_type: str, name_or_path: str = "") -> Family:
    """The family of a loaded config's ``model_type``; ValueError naming the supported ones."""
    if model_type not in FAMILIES:
        raise ValueError(f"model.name_or_path={name_or_path!r} is a {model_type!r} model; supported "
                         f"wav2vec2-family model types: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[model_type]
