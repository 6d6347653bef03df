"""Files shipped inside the package: the bundled demo model, its model card, an example speech clip.

``demo_model.safetensors`` is the demo-size model trained on the public BEAT2 sample files
(see ``MODEL_CARD.md`` beside it); ``example_speech.flac`` is a 12.6 s English sentence
synthesised with espeak-ng 1.51 for this project (16 kHz mono)."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError

ASSETS = Path(__file__).resolve().parent
DEMO_MODEL = ASSETS / "demo_model.safetensors"
MODEL_CARD = ASSETS / "MODEL_CARD.md"
EXAMPLE_SPEECH = ASSETS / "example_speech.flac"

__all__ = ["ASSETS", "DEMO_MODEL", "EXAMPLE_SPEECH", "MODEL_CARD", "demo_model_path", "example_speech_path"]


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CheckpointError(f"the bundled {what} is missing from this installation ({path}); "
                              "reinstall livegesture or pass a file explicitly")
    return path


def demo_model_path() -> Path:
    """Path of the bundled demo model (what ``LiveGesture.load()`` loads)."""
    return _existing(DEMO_MODEL, "demo model")


def example_speech_path() -> Path:
    """Path of the bundled example speech clip."""
    return _existing(EXAMPLE_SPEECH, "example speech clip")
