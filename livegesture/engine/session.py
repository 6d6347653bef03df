"""StreamSession: one live stream, a one-row :class:`~.core.EngineCore`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import torch

from ..data.audio import SAMPLE_RATE
from ..errors import LiveGestureError
from ..model.config import SamplingConfig
from ..motion import Motion
from ..stages.base import StageSpec
from .core import EngineCore, check_chunk, session_cleanup, stage_specs

if TYPE_CHECKING:
    from .api import LiveGesture

__all__ = ["StreamSession"]


class StreamSession:
    """One live stream: :meth:`push` chunks of any length, get the frames that became final.

    Audio is mono float32 at the session's ``sample_rate`` (1-D numpy chunks; float64 is
    converted, int16 / 2-D / NaN / Inf raise :class:`AudioError` and leave the session
    usable). Other rates than 16 kHz are resampled in streaming fashion (soxr
    ``ResampleStream``, VHQ), which adds the resampler's delay before audio reaches the model.
    The 4 frames of token ``tau`` are emitted as soon as the audio up to the end of that token
    has arrived; frames are never revised. Translation x/z continues across pushes.
    """

    def __init__(self, engine: "LiveGesture", seed: int = 0, sample_rate: int = SAMPLE_RATE,
                 sampling: SamplingConfig | None = None, smoothing: StageSpec | None = None,
                 stages: Sequence[StageSpec] = (), cleanup: StageSpec | None = None,
                 seed_motion: Motion | None = None):
        self.engine = engine
        self._core = EngineCore(engine, 1, sampling)
        self._sid = self._core.open(seed, sample_rate, stage_specs(stages, smoothing, session_cleanup(engine, cleanup)))
        self.seed, self.sample_rate = int(seed), int(sample_rate)
        self.sampling = self._core.sampling
        self.closed = False
        if seed_motion is not None:
            self._core.prime_motion(self._sid, seed_motion)

    @property
    def samples_pushed(self) -> int:
        return self._core.samples_pushed(self._sid)

    @property
    def frames_emitted(self) -> int:
        """Frames emitted so far, primed history (:meth:`prime`, ``seed_motion``) included."""
        return self._core.frames_emitted(self._sid)

    @property
    def primed_frames(self) -> int:
        """Frames of primed history counted in :attr:`frames_emitted`."""
        return self._core.primed_frames(self._sid)

    @property
    def last_tokens(self) -> torch.Tensor:
        """Token ids (R, n) sampled by the last push/close (regions in ``REGIONS`` order)."""
        return self._core.last_tokens(self._sid)

    def state_nbytes(self) -> int:
        """Bytes of every per-session tensor (model, decoders, carried audio): constant over a stream."""
        return self._core.state_nbytes()

    @property
    def has_text(self) -> bool:
        """Whether the model takes words (trained with text and shipping a vocabulary)."""
        return self.engine.has_text

    def push_words(self, words: Iterable[Any]) -> int:
        """Aligned words ``(start, end, text)`` (seconds) for frames still to come: a frame gets the
        word whose [start, end) holds its centre if the word was pushed before the frame's token is
        computed; late words are ignored (frames are never revised). Returns how many words can still
        take effect. Raises :class:`LiveGestureError` for a model without text."""
        return self._core.push_words(self._sid, words)

    def prime(self, tokens: torch.Tensor, audio: np.ndarray | None = None) -> Motion:
        """Start from given token history (R, T), as if this session had generated it
        (:meth:`EngineCore.prime`); returns the primed frames. Only before the first push."""
        self._check_open()
        return self._core.prime(self._sid, tokens, audio)

    def _check_open(self) -> None:
        if self.closed:
            raise LiveGestureError("this session is closed; start a new one with model.stream()")

    def push(self, chunk: np.ndarray) -> Motion:
        """Push a 1-D float32 chunk of any length (0 included); returns the Motion of the frames
        that became final with it (possibly 0 frames)."""
        self._check_open()
        self._core.push_checked(self._sid, check_chunk(chunk))
        return self._core.run().get(self._sid, Motion.empty())

    def close(self) -> Motion:
        """End the stream and return the frames that remain. A final partial token (audio that
        ends inside a token's 4 frames) is NOT emitted, so at 16 kHz every frame was already
        returned by :meth:`push` and this is the empty Motion; when resampling it holds the frames
        completed by the resampler's tail. Closing twice returns the empty Motion."""
        if self.closed:
            return Motion.empty()
        self._core.finish(self._sid)
        out = self._core.run().get(self._sid, Motion.empty())
        self.closed = True
        return out
