"""Model loading (hub name, revision or folder), family adapters and the demo's tiny models."""

from speechneurons.models.speech_model import (
    ModelLoadError,
    SpeechModel,
    load_speech_model,
    resolve_device,
)
from speechneurons.models.tiny import build_tiny_model

__all__ = [
    "ModelLoadError",
    "SpeechModel",
    "build_tiny_model",
    "load_speech_model",
    "resolve_device",
]
