"""SessionBatch: lockstep sessions, an n-row :class:`~.core.EngineCore` pushed in equal chunks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import torch

from ..data.audio import SAMPLE_RATE, check_sample_rate
from ..errors import AudioError, LiveGestureError
from ..model.config import SamplingConfig
from ..motion import Motion
from ..stages.base import StageSpec
from .core import EngineCore, check_chunk, session_cleanup, stage_specs

if TYPE_CHECKING:
    from .api import LiveGesture

__all__ = ["SessionBatch"]


class SessionBatch:
    """``n`` live sessions advanced together, one batched model call per token.

    Rule: the sessions move in lockstep. Every :meth:`push` takes one chunk per session and
    all chunks must have the same length (a (n, N) array or a list of n 1-D arrays), so the
    sessions always hold the same amount of audio and need the same steps. Sessions with
    different timing belong in a :class:`~.pool.SessionPool`. Each session's output is
    bit-identical to what it would get alone with its seed (the shared core is row-invariant).

    A final partial token (audio that ends inside a token) is never emitted.
    """

    def __init__(self, engine: "LiveGesture", seeds: Sequence[int], sample_rate: int = SAMPLE_RATE,
                 sampling: SamplingConfig | None = None, smoothing: StageSpec | None = None,
                 stages: Sequence[StageSpec] = (), cleanup: StageSpec | None = None):
        sample_rate = check_sample_rate(sample_rate)
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise LiveGestureError("a session batch needs at least one session")
        self.engine, self.seeds, self.sample_rate = engine, seeds, int(sample_rate)
        self._core = EngineCore(engine, len(seeds), sampling)
        self.sampling = self._core.sampling
        specs = stage_specs(stages, smoothing, session_cleanup(engine, cleanup))
        self._sids = [self._core.open(s, sample_rate, specs) for s in seeds]
        self.closed = False

    @property
    def size(self) -> int:
        return len(self.seeds)

    def __len__(self) -> int:
        return self.size

    @property
    def samples_pushed(self) -> int:
        """Input samples (at `sample_rate`) per session."""
        return self._core.samples_pushed(self._sids[0])

    @property
    def frames_emitted(self) -> int:
        """Frames emitted per session so far (index of the next frame)."""
        return self._core.frames_emitted(self._sids[0])

    @property
    def last_tokens(self) -> torch.Tensor:
        """Token ids (n, R, k) sampled by the last push/close."""
        return torch.stack([self._core.last_tokens(sid) for sid in self._sids])

    def state_nbytes(self) -> int:
        """Bytes of every per-session tensor (model, decoders, carried audio): constant over a stream."""
        return self._core.state_nbytes()

    @property
    def has_text(self) -> bool:
        """Whether the model takes words (trained with text and shipping a vocabulary)."""
        return self.engine.has_text

    def push_words(self, words: Iterable[Any], session: int = 0) -> int:
        """Give session `session` aligned words (see :meth:`StreamSession.push_words`)."""
        if not self.has_text:
            raise LiveGestureError("this model has no text input (it was trained without words); "
                                   "push audio only")
        if not 0 <= session < self.size:
            raise LiveGestureError(f"session {session} out of range for a batch of {self.size}")
        return self._core.push_words(self._sids[session], words)

    def push(self, chunks: np.ndarray | Sequence[np.ndarray]) -> list[Motion]:
        """Push one chunk per session; returns per session the Motion of the frames that became
        final (possibly 0 frames). Bad chunks raise :class:`AudioError` before anything changes."""
        if self.closed:
            raise LiveGestureError("this session is closed; start a new one with model.stream()")
        if isinstance(chunks, np.ndarray) and chunks.ndim == 2 and self.size > 1:
            chunks = list(chunks)
        elif isinstance(chunks, np.ndarray):
            chunks = [chunks]
        chunks = list(chunks)
        if len(chunks) != self.size:
            raise AudioError(f"got {len(chunks)} chunks for a batch of {self.size} sessions")
        xs = [check_chunk(c, "chunk" if self.size == 1 else f"chunk of session {i}") for i, c in enumerate(chunks)]
        if len({len(x) for x in xs}) != 1:
            raise AudioError(f"chunks of a session batch must have equal lengths, got {[len(x) for x in xs]}")
        for sid, x in zip(self._sids, xs):
            self._core.push_checked(sid, x)
        return self._collect(self._core.run())

    def _collect(self, out: dict[int, Motion]) -> list[Motion]:
        return [out.get(sid, Motion.empty()) for sid in self._sids]

    def close(self) -> list[Motion]:
        """End the streams: per session whatever is still pending (the resampler's tail when
        resampling, else nothing). A final partial token is NOT emitted, so without resampling
        this is the empty Motion. Closing twice returns empty Motions."""
        if self.closed:
            return [Motion.empty() for _ in range(self.size)]
        for sid in self._sids:
            self._core.finish(sid)
        out = self._collect(self._core.run())
        self.closed = True
        return out
