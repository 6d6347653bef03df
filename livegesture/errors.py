"""User-facing errors.

Every problem a user can cause (a bad file, a bad chunk, a mismatched checkpoint)
raises a subclass of :class:`LiveGestureError` whose message names the thing at
fault and what is wrong with it. The CLI prints these without a traceback.
"""

from __future__ import annotations


class LiveGestureError(Exception):
    """Base class of all expected, user-caused errors."""


class DataError(LiveGestureError, ValueError):
    """A data file or folder is missing, malformed or inconsistent."""


class AudioError(LiveGestureError, ValueError):
    """Audio that cannot be used: wrong shape, dtype, rate, NaN/Inf, unreadable file."""


class CheckpointError(LiveGestureError, ValueError):
    """A model file that is missing, corrupt or does not match the config."""


class ConfigError(LiveGestureError, ValueError):
    """A configuration file or value that is invalid."""


class OutputError(LiveGestureError, OSError):
    """An output that cannot be written (unwritable folder, a folder in the way) or sent
    (an unreachable network address)."""
