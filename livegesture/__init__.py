"""LiveGesture: live speech to full-body SMPL-X gestures with zero look-ahead."""

from .errors import LiveGestureError
from .motion import Motion

__version__ = "0.1.0"
__all__ = ["LiveGesture", "LiveGestureError", "Motion", "__version__"]


def __getattr__(name: str):
    """``LiveGesture`` is imported lazily (it pulls in the model and tokenizer code)."""
    if name == "LiveGesture":
        from .engine import LiveGesture

        return LiveGesture
    raise AttributeError(f"module 'livegesture' has no attribute {name!r}")
