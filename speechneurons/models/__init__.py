"""Model loading (hub name, revision or folder) and the demo's tiny WavLM."""

from speechneurons.models.speech_model import (
    ModelLoadError,
    SpeechModel,
    load_speech_model,
    resolve_device,
)
from speechneurons.models.tiny import build_tiny_wavlm

__all__ = [
    "ModelLoadError",
    "SpeechModel",
    "build_tiny_wavlm",
    "load_speech_model",
    "resolve_device",
]
