"""LiveGesture: live speech to full-body SMPL-X gestures with zero look-ahead."""

from .errors import LiveGestureError
from .motion import Motion

__version__ = "0.1.0"
__all__ = ["LiveGestureError", "Motion", "__version__"]
