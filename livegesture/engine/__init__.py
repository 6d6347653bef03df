"""The streaming engine: one stepping core (:mod:`.core`) under thin front ends.

* :class:`LiveGesture` (:mod:`.api`): load a model, ``stream`` / ``stream_batch`` / ``generate``;
* :class:`StreamSession` (:mod:`.session`): one live stream;
* :class:`SessionBatch` (:mod:`.batch`): lockstep sessions pushed in equal chunks;
* :class:`SessionPool` (:mod:`.pool`): independent sessions with their own timing (the server).

All of them run :class:`EngineCore`, so they agree bit for bit (see :mod:`.core`).
"""

from .api import LiveGesture
from .batch import SessionBatch
from .core import EngineCore, PoolFullError, check_chunk, frames_from_regions, token_audio_time, token_end_sample
from .pool import SessionPool
from .session import StreamSession

__all__ = ["EngineCore", "LiveGesture", "PoolFullError", "SessionBatch", "SessionPool", "StreamSession",
           "check_chunk", "frames_from_regions", "token_audio_time", "token_end_sample"]
