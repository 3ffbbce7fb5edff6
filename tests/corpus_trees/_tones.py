"""What every corpus tree writes: tones whose pitch follows the level and the speaker, and files
with names the corpus must reject."""

from __future__ import annotations

from pathlib import Path

from audio_files import write_tone


def bad_files(root: Path, bad: dict[str, str]) -> dict[str, str]:
    """Write a valid tone at each of ``bad``'s paths (names the corpus must reject); returns ``bad``."""
    for name in bad:
        write_tone(root / name, seconds=0.5)
    return bad


def tone(path: Path, level: int, speaker: int) -> None:
    """A half-second tone whose pitch follows the level and the speaker (so units can differ)."""
    write_tone(path, seconds=0.5, freq=150.0 + 40 * level + 7 * speaker)
