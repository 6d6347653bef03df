"""LiveGesture: a loaded model and the public inference API (docs/design.md §1, §6).

>>> model = LiveGesture.load("model.safetensors")
>>> session = model.stream(seed=0)          # one live stream, 16 kHz mono float32
>>> out = session.push(chunk)               # Motion of the frames that became final (maybe 0)
>>> rest = session.close()                  # whatever is still pending
>>> motion = model.generate(audio, seed=0)  # == streaming the whole clip

:meth:`LiveGesture.generate` is exactly one push of the whole clip followed by
:meth:`StreamSession.close`, so offline == streaming by construction; every front end
(:class:`StreamSession`, :class:`SessionBatch`, :class:`SessionPool`) runs the one
:class:`~.core.EngineCore`.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..bundle import ModelBundle
from ..cleanup.config import CleanupConfig
from ..data.audio import SAMPLE_RATE, prepare_audio
from ..errors import LiveGestureError
from ..model.config import SamplingConfig
from ..motion import Motion
from ..stages.base import StageSpec
from ..tokenizer.grouped import GroupedDecoder
from .batch import SessionBatch
from .compiled import CompiledDecode, CompiledEncode, CompiledStep
from .session import StreamSession

__all__ = ["LiveGesture"]


class LiveGesture:
    """A loaded LiveGesture model: :meth:`stream` live sessions, :meth:`generate` whole clips.

    The model is read-only to the engine: the stacked / fused inference copies of the weights are
    built at the first step and not re-checked (``bundle.model.freeze_inference_weights(False)`` if
    you change weights in place afterwards)."""

    def __init__(self, bundle: ModelBundle, precision: str = "float32", compile: bool = False):
        self.bundle = bundle
        # the step's matrix products: float32 (exact; the default) or weight-only int8 (faster on a CPU,
        # close to float32 but not equal: docs/design.md §6 "Precision" states the measured cost)
        self.bundle.model.set_inference_precision(precision)
        self.bundle.model.eval()
        self.bundle.tokenizer.eval()
        # streaming decode of the 4 region tokenizers as one grouped computation (stacked weights)
        self._decoder = GroupedDecoder(bundle.tokenizer)
        self._decoder.set_precision(precision)  # the decoders' products too
        # an engine never changes the weights: the stacked / fused copies are built once
        self.bundle.model.freeze_inference_weights()
        self._decoder._cache.frozen = True
        # opt-in: the one-row cores' model step as one compiled program (:mod:`.compiled`), compiled
        # here for the model file's sampling (other guidance settings compile at their first stream)
        self.compile = bool(compile)
        self._compiled: dict[tuple[bool, float], CompiledStep] = {}
        #: the one-row cores' tokenizer decoder and audio encoder as compiled programs (None unless
        #: the engine compiles)
        self.compiled_decode: CompiledDecode | None = None
        self.compiled_encode: CompiledEncode | None = None
        if self.compile:
            self.compiled_step(self.sampling)
            dev = self.bundle.model.null_audio.device
            self.compiled_decode = CompiledDecode(self._decoder, dev)
            self.compiled_encode = CompiledEncode(self.bundle.model.audio_encoder, dev)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             precision: str = "float32", compile: bool = False) -> "LiveGesture":
        """Load a model file (``livegesture train all`` output); without a path, the bundled demo
        model (``livegesture/assets/demo_model.safetensors``, described by its MODEL_CARD.md).
        `precision`: ``float32`` or ``int8`` (see :attr:`precision`); `compile`: the lone stream's
        step as one compiled program (:mod:`.compiled`: faster, not bit-equal to eager, about a
        minute to compile the first time)."""
        from ..model.quant import check_precision
        from .compiled import compile_available

        check_precision(precision)  # before reading a file
        if compile and (why := compile_available(device)) is not None:
            raise LiveGestureError(why)
        if path is None:
            from ..assets import demo_model_path

            path = demo_model_path()
        return cls(ModelBundle.load(path, device), precision, compile)

    def compiled_step(self, sampling: SamplingConfig) -> CompiledStep | None:
        """The compiled one-row step for `sampling`'s guidance (None unless the engine compiles)."""
        if not self.compile:
            return None
        key = (sampling.guided, float(sampling.guidance_scale))
        if key not in self._compiled:
            self._compiled[key] = CompiledStep(self.bundle.model, 1, *key)
        return self._compiled[key]

    @property
    def precision(self) -> str:
        """``float32`` or ``int8``: the precision of the model step's matrix products."""
        return self.bundle.model.inference_precision

    @property
    def sampling(self) -> SamplingConfig:
        return self.bundle.config.sampling

    @property
    def has_text(self) -> bool:
        """Whether the model takes aligned words as an optional cue (``push_words``, ``words=``)."""
        return self.bundle.model.config.text_vocab_size > 0 and self.bundle.vocab is not None

    @property
    def cleanup(self) -> CleanupConfig:
        """The clean-up sessions get unless told otherwise (the model file's ``config.cleanup``)."""
        return self.bundle.config.cleanup

    def stream(self, seed: int = 0, sample_rate: int = SAMPLE_RATE,
               sampling: SamplingConfig | None = None, smoothing: StageSpec | None = None,
               stages: Sequence[StageSpec] = (), cleanup: CleanupConfig | None = None,
               seed_motion: Motion | None = None) -> StreamSession:
        """A new live session (seeded; `sampling` overrides the model file's sampling config).

        Output chain: `cleanup` (:class:`~livegesture.cleanup.CleanupConfig`: token hand-overs,
        root control, planted feet; None = :attr:`cleanup`, ``CleanupConfig.off()`` = the raw
        model output), then `stages` (:mod:`livegesture.stages` specs) in order, then `smoothing`
        (a :class:`~livegesture.smoothing.SmoothingConfig`, a causal low-pass adding about its
        ``tau`` of lag). `seed_motion`: a :class:`Motion` (one pose or frames: the avatar's
        current pose, the end of a previous clip) the session starts from, so that it continues
        it without a jump (:meth:`~.core.EngineCore.prime_motion`)."""
        return StreamSession(self, seed, sample_rate, sampling, smoothing, stages, cleanup, seed_motion)

    def stream_batch(self, n: int, seeds: Sequence[int] | None = None, sample_rate: int = SAMPLE_RATE,
                     sampling: SamplingConfig | None = None, smoothing: StageSpec | None = None,
                     stages: Sequence[StageSpec] = (), cleanup: CleanupConfig | None = None) -> SessionBatch:
        """`n` lockstep sessions advanced by one batched model call (seeds default to 0..n-1);
        see :class:`SessionBatch` for the equal-length rule and :meth:`stream` for the chain."""
        seeds = list(range(n)) if seeds is None else list(seeds)
        if len(seeds) != n:
            raise LiveGestureError(f"{len(seeds)} seeds for {n} sessions")
        return SessionBatch(self, seeds, sample_rate, sampling, smoothing, stages, cleanup)

    def generate(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, seed: int = 0,
                 sampling: SamplingConfig | None = None, words: Iterable[Any] | None = None,
                 smoothing: StageSpec | None = None, stages: Sequence[StageSpec] = (),
                 cleanup: CleanupConfig | None = None, seed_motion: Motion | None = None) -> Motion:
        """Motion of a whole clip: exactly streaming it (one push of everything, then close).

        `audio` may be any array :func:`prepare_audio` accepts (float/int16/int32, mono or
        (samples, channels)); it is mixed to mono float32 first, then streamed at `sample_rate`.
        `words` (optional, models with text only): aligned words, pushed before the audio.
        `cleanup`, `seed_motion` and the rest as for :meth:`stream` (the clean-up is on by default;
        evaluation scores the raw model output)."""
        x = prepare_audio(audio, sample_rate, target_rate=sample_rate)  # dtype / channels only
        session = self.stream(seed, sample_rate, sampling, smoothing, stages, cleanup, seed_motion)
        if words is not None:
            session.push_words(words)
        return Motion.concatenate([session.push(x), session.close()])
