"""SessionPool: independent live sessions of one model (the server's engine layer).

A :class:`~.batch.SessionBatch` needs lockstep sessions; a server cannot promise that, since
every client sends its own packet sizes at its own times. A pool is the
:class:`~.core.EngineCore` itself with sessions opened and closed over its life: every
session keeps its state in its own row of the preallocated tensors, and each
:meth:`~.core.EngineCore.run` encodes, steps (every session with a token ready, in one batched
model call), decodes and post-processes whatever is ready. A session's frames are
bit-identical to what :meth:`LiveGesture.generate` gives for its audio and seed, whatever the
other sessions do. Memory is allocated once for ``capacity`` sessions; :meth:`open` refuses
more and :meth:`close` returns a row to the fresh state. Not thread-safe: drive a pool from
one thread.

>>> pool = SessionPool(model, capacity=8)
>>> a, b = pool.open(seed=0), pool.open(seed=1)
>>> pool.push(a, chunk_a); pool.push(b, chunk_b)   # any lengths, any times
>>> new = pool.run()                               # {session: Motion of its new frames}
>>> pool.finish(a); pool.run(); pool.close(a)      # end of stream, then free the row
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..data.audio import SAMPLE_RATE
from ..model.config import SamplingConfig
from ..stages.base import StageSpec
from .core import EngineCore, PoolFullError, session_cleanup, stage_specs, token_audio_time

if TYPE_CHECKING:
    from .api import LiveGesture

__all__ = ["PoolFullError", "SessionPool", "token_audio_time"]


class SessionPool(EngineCore):
    """Up to `capacity` independent live sessions of one :class:`LiveGesture` model."""

    def __init__(self, engine: "LiveGesture", capacity: int = 32, sampling: SamplingConfig | None = None):
        super().__init__(engine, capacity, sampling)

    def open(self, seed: int = 0, sample_rate: int = SAMPLE_RATE, smoothing: StageSpec | None = None,
             stages: Sequence[StageSpec] = (), cleanup: StageSpec | None = None) -> int:
        """A new session; returns its id. Raises :class:`PoolFullError` when every row is taken.
        `cleanup`: its :class:`~livegesture.cleanup.CleanupConfig` (None: the model file's default;
        ``CleanupConfig.off()``: the raw model output), first in its chain; `smoothing`: the causal
        output low-pass of :mod:`livegesture.smoothing` (off by default), after the other `stages`.
        Start it from seed motion with :meth:`prime_motion` before its first push."""
        return super().open(seed, sample_rate, stage_specs(stages, smoothing, session_cleanup(self.engine, cleanup)))
