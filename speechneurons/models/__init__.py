"""Model loading (hub name, revision or folder) and family adapters; the demo's tiny models are
built by :mod:`speechneurons.models.tiny` (imported only where they are built)."""

from speechneurons.models.speech_model import (
    ModelLoadError,
    SpeechModel,
    load_speech_model,
    resolve_device,
)

__all__ = [
    "ModelLoadError",
    "SpeechModel",
    "load_speech_model",
    "resolve_device",
]
