"""The public inference API: live streams and whole clips, one code path (docs/design.md §1, §6).

>>> model = LiveGesture.load("model.safetensors")
>>> session = model.stream(seed=0)          # one live stream, 16 kHz mono float32
>>> out = session.push(chunk)               # Motion of the frames that became final (maybe 0)
>>> rest = session.close()                  # whatever is still pending
>>> motion = model.generate(audio, seed=0)  # == streaming the whole clip

Emission rule (the zero look-ahead contract): the 4 frames of token ``tau`` are emitted by
the first push after which the session holds the audio up to the end of that token, i.e.
``ceil((4 tau + 4) * 1600 / 3)`` samples at 16 kHz. For every token a push completes, the
model's streaming audio encoder runs on exactly that token's samples (so the computation, and
its float rounding, is the same whatever the push sizes: streamed frames are bit-identical to
offline ones), then one :meth:`LiveGestureModel.step` (all regions and the fuse, with the classifier-free guidance
stream in the same batched call), samples the token with the session's seeded
:class:`TokenSampler`, decodes the 4 frames of every region with the streaming tokenizer
decoder state and denormalises them. :meth:`LiveGesture.generate` is exactly one push of the
whole clip followed by :meth:`StreamSession.close`, so offline == streaming by construction.

Several sessions advance in one batched model call with :class:`SessionBatch`
(:meth:`LiveGesture.stream_batch`): its sessions stay in lockstep, every push gives each
session a chunk of the *same length*, so they always hold the same amount of audio and
need the same model steps. Each session's frames equal those it would get alone (its own
seed, its own state rows).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .audio.encoder import frames_available, frames_end_sample
from .body.constants import FPS, REGIONS
from .bundle import ModelBundle
from .data.audio import SAMPLE_RATE, check_sample_rate, prepare_audio, streaming_resampler
from .data.textgrid import Word, add_words, word_ids_per_frame, words_still_due
from .errors import AudioError, LiveGestureError
from .model.config import FRAMES_PER_TOKEN, SamplingConfig
from .model.sampling import TokenSampler
from .motion import Motion
from .smoothing import CausalSmoother, SmoothingConfig
from .streaming.state import state_nbytes
from .tokenizer.grouped import GroupedDecoder

__all__ = ["LiveGesture", "SessionBatch", "StreamSession"]

_LOWER_VEL_X, _LOWER_VEL_Z = 54, 56  # lower-region features: x / z per-frame translation velocity
_RAW_CAP = 3200  # > the 16 kHz samples of one token (ceil(4 * 1600 / 3) + 1)


def token_end_sample(tau: int) -> int:
    """16 kHz samples up to the end of token `tau` (0 for tau = -1): when its frames can be emitted."""
    return frames_end_sample(FRAMES_PER_TOKEN * (tau + 1))


def frames_from_regions(feats: dict[str, np.ndarray], offset: np.ndarray) -> Motion:
    """The Motion of one session's decoded region features; the x / z translation is the running
    sum of the lower region's per-frame velocities, continued from `offset` (2,), updated in place."""
    m = Motion.from_regions(feats)
    lower = feats["lower"].astype(np.float64)
    for j, (axis, dim) in enumerate(((0, _LOWER_VEL_X), (2, _LOWER_VEL_Z))):
        pos = offset[j] + np.cumsum(lower[:, dim])
        m.trans[:, axis] = pos.astype(np.float32)
        offset[j] = pos[-1]
    return m


def check_chunk(chunk: object, what: str = "chunk") -> np.ndarray:
    """A pushed chunk as a 1-D float32 array; :class:`AudioError` naming the problem otherwise.

    Accepts 1-D float32 (or float64, converted) numpy arrays; integer samples, 2-D arrays
    (channels), NaN and Inf are refused (convert with :func:`prepare_audio` first)."""
    if not isinstance(chunk, np.ndarray):
        raise AudioError(f"{what}: expected a 1-D float32 numpy array, got {type(chunk).__name__}")
    if chunk.ndim != 1:
        raise AudioError(f"{what}: expected a 1-D (samples,) mono array, got shape {chunk.shape} "
                         "(mix channels down first, e.g. with livegesture.data.audio.prepare_audio)")
    if chunk.dtype not in (np.float32, np.float64):
        raise AudioError(f"{what}: unsupported sample type {chunk.dtype}; push float32 samples in [-1, 1] "
                         "(convert integers with livegesture.data.audio.prepare_audio)")
    if chunk.size and not np.isfinite(chunk).all():
        raise AudioError(f"{what}: contains NaN or Inf samples")
    return np.ascontiguousarray(chunk, dtype=np.float32)


class SessionBatch:
    """``n`` live sessions advanced together, one batched model call per token.

    Rule: the sessions move in lockstep. Every :meth:`push` takes one chunk per session and
    all chunks must have the same length (a (n, N) array or a list of n 1-D arrays), so the
    sessions always hold the same amount of audio and need the same steps. Sessions with
    different timing need separate batches (or :class:`StreamSession`). Each session's
    output equals what it would get alone with its seed.

    A final partial token (audio that ends inside a token) is never emitted.
    """

    def __init__(self, engine: "LiveGesture", seeds: Sequence[int], sample_rate: int = SAMPLE_RATE,
                 sampling: SamplingConfig | None = None, smoothing: SmoothingConfig | None = None):
        sample_rate = check_sample_rate(sample_rate)
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise LiveGestureError("a session batch needs at least one session")
        self.engine, self.seeds, self.sample_rate = engine, seeds, int(sample_rate)
        self.sampling = sampling or engine.sampling
        model = engine.bundle.model
        self._device = model.null_audio.device
        B = self.size
        self._state = model.init_state(B, guidance=self.sampling.guided)
        self._dec = engine._decoder.init_state(B, self._device)  # all regions' decoder histories
        self._sampler = TokenSampler(self.sampling, seeds, self._device)
        self._prev = torch.full((B, model.num_regions, 1), model.bos_id, dtype=torch.long, device=self._device)
        # 16 kHz samples not yet given to the audio encoder: it runs once per token, on exactly that
        # token's samples (see _advance). Bounded by one token of audio (< 2135).
        self._raw = np.zeros((B, _RAW_CAP), np.float32)
        self._n_raw = 0
        self._samples16 = 0  # 16 kHz samples received per session (encoded or not)
        self._offset = np.zeros((B, 2), np.float64)  # running x / z translation of each session
        self._resamplers = None if self.sample_rate == SAMPLE_RATE else [
            streaming_resampler(self.sample_rate) for _ in seeds]
        # words pushed with timestamps, per session (only those that can still cover a frame are kept)
        self._words: list[list[Word]] = [[] for _ in seeds]
        # optional causal low-pass of the emitted frames (off unless asked for)
        self._smoothers = (None if smoothing is None or smoothing.tau == 0
                           else [CausalSmoother(smoothing, FPS) for _ in seeds])
        self.samples_pushed = 0      # input samples (at `sample_rate`) per session
        self.frames_emitted = 0      # frames emitted per session so far (index of the next frame)
        self.last_tokens = torch.zeros(B, model.num_regions, 0, dtype=torch.long)  # tokens of the last call
        self.closed = False

    @property
    def size(self) -> int:
        return len(self.seeds)

    def __len__(self) -> int:
        return self.size

    def state_nbytes(self) -> int:
        """Bytes of every per-session tensor (model, decoders, pending audio): constant over a stream."""
        return state_nbytes(self._state) + state_nbytes(self._dec) + self._prev.numel() * 8 + self._raw.nbytes

    # ------------------------------------------------------------------ words (optional text cues)
    @property
    def has_text(self) -> bool:
        """Whether the model takes words (trained with text and shipping a vocabulary)."""
        return self.engine.has_text

    def push_words(self, words: Iterable[Any], session: int = 0) -> int:
        """Give session `session` aligned words: :class:`Word`, ``(start, end, text)`` or
        ``{"word", "start", "end"}`` (seconds of this session's audio). A frame gets the word
        whose [start, end) holds its centre, if that word was pushed before the frame's token is
        computed; words for frames already computed are too late and ignored (frames are never
        revised). Returns how many words can still take effect."""
        if not self.has_text:
            raise LiveGestureError("this model has no text input (it was trained without words); "
                                   "push audio only")
        if not 0 <= session < self.size:
            raise LiveGestureError(f"session {session} out of range for a batch of {self.size}")
        # due: words ending after the start of the first frame not yet computed
        self._words[session], n = add_words(self._words[session], words, self.frames_emitted / FPS)
        return n

    def _word_ids(self, n_frames: int) -> torch.Tensor | None:
        """(B, n_frames) word ids of the next `n_frames` frames, or None without words."""
        if not any(self._words):
            return None
        vocab = self.engine.bundle.vocab
        ids = np.stack([word_ids_per_frame(ws, n_frames, vocab, start_frame=self.frames_emitted)
                        for ws in self._words])
        return torch.from_numpy(ids).to(self._device)

    def _prune_words(self) -> None:
        self._words = [words_still_due(ws, self.frames_emitted / FPS) for ws in self._words]

    # ------------------------------------------------------------------ pushing audio
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
        self.samples_pushed += len(xs[0])
        if self._resamplers is not None:
            xs = [r.resample_chunk(x) for r, x in zip(self._resamplers, xs)]
        return self._smooth(self._advance(xs))

    def _smooth(self, motions: list[Motion]) -> list[Motion]:
        if self._smoothers is None:
            return motions
        return [f(m) for f, m in zip(self._smoothers, motions)]

    def close(self) -> list[Motion]:
        """End the streams: per session whatever is still pending (the resampler's tail when
        resampling, else nothing). A final partial token is NOT emitted, so without resampling
        this is the empty Motion. Closing twice returns empty Motions."""
        if self.closed:
            return [Motion.empty() for _ in range(self.size)]
        out = [Motion.empty() for _ in range(self.size)]
        self.last_tokens = self.last_tokens[..., :0]
        if self._resamplers is not None:
            tails = [r.resample_chunk(np.zeros(0, np.float32), last=True) for r in self._resamplers]
            n = min(len(t) for t in tails)
            out = self._smooth(self._advance([np.ascontiguousarray(t[:n], np.float32) for t in tails]))
        self.closed = True
        return out

    # ------------------------------------------------------------------ the one code path
    @torch.no_grad()
    def _advance(self, xs: list[np.ndarray]) -> list[Motion]:
        b, model = self.engine.bundle, self.engine.bundle.model
        B, K4 = self.size, FRAMES_PER_TOKEN
        first = self.frames_emitted // K4  # the next token
        start = token_end_sample(first - 1)  # absolute index of the first sample not yet encoded
        self._samples16 += len(xs[0])
        n = frames_available(self._samples16) // K4 - first  # tokens completed by this push
        if n <= 0:  # keep the audio until it completes a token
            for i, x in enumerate(xs):
                self._raw[i, self._n_raw:self._n_raw + len(x)] = x
            self._n_raw += len(xs[0])
            self.last_tokens = self._prev.new_zeros(B, model.num_regions, 0).cpu()
            return [Motion.empty() for _ in range(B)]
        if self._n_raw:
            xs = [np.concatenate([self._raw[i, :self._n_raw], x]) for i, x in enumerate(xs)]
            self._n_raw = 0
        audio = torch.from_numpy(np.stack(xs)).to(self._device)  # samples start .. _samples16 - 1
        ids = self._word_ids(K4 * n)
        toks = []
        for tau in range(first, first + n):
            # one encoder call per token, on exactly that token's samples: the calls (and so the
            # float rounding) are the same whatever the push sizes, so streamed tokens are
            # bit-identical to offline ones (encoding a whole file in one call rounds differently
            # from 20 ms packets, by ~3e-6, and a token drawn at a near-tie then differs)
            seg = audio[:, token_end_sample(tau - 1) - start:token_end_sample(tau) - start]
            feats = model.encode_audio(seg, self._state)  # exactly the 4 frames of token tau
            if ids is not None:
                j = K4 * (tau - first)
                feats = model.audio_encoder.embed_words(feats, ids[:, j:j + K4])
            logits = model.step(self._state, feats, self._prev, self.sampling.guidance_scale)
            tok = self._sampler.sample(logits[:, :, 0])  # type: ignore[index]
            toks.append(tok)
            self._prev = tok[:, :, None]
        rest = audio[:, token_end_sample(first + n - 1) - start:]
        self._raw[:, :rest.shape[1]] = rest.cpu().numpy()
        self._n_raw = rest.shape[1]
        tokens = torch.stack(toks, dim=-1)  # (B, R, n)
        self.last_tokens = tokens.cpu()
        # one grouped decode of every region, token by token: the same matmul shapes whatever the push
        # sizes, so the decoder adds no chunking-dependent rounding (a whole-clip decode in one call
        # differed from 1-token calls by up to 1.4e-5 rad in poses)
        steps = [self.engine._decoder.decode(tokens[:, :, t:t + 1], self._dec) for t in range(n)]
        frames = [torch.cat([st[i] for st in steps], dim=1) for i in range(len(REGIONS))]
        feats = {r: b.stats.denormalize(r, frames[i].float().cpu().numpy()) for i, r in enumerate(REGIONS)}
        out = []
        for s in range(B):
            out.append(frames_from_regions({r: v[s] for r, v in feats.items()}, self._offset[s]))
        self.frames_emitted += K4 * n
        if any(self._words):
            self._prune_words()
        return out


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
                 sampling: SamplingConfig | None = None, smoothing: SmoothingConfig | None = None):
        self._batch = SessionBatch(engine, [seed], sample_rate, sampling, smoothing)
        self.seed = int(seed)

    @property
    def sample_rate(self) -> int:
        return self._batch.sample_rate

    @property
    def samples_pushed(self) -> int:
        return self._batch.samples_pushed

    @property
    def frames_emitted(self) -> int:
        return self._batch.frames_emitted

    @property
    def last_tokens(self) -> torch.Tensor:
        """Token ids (R, n) sampled by the last push/close (regions in ``REGIONS`` order)."""
        return self._batch.last_tokens[0]

    @property
    def closed(self) -> bool:
        return self._batch.closed

    def state_nbytes(self) -> int:
        return self._batch.state_nbytes()

    @property
    def has_text(self) -> bool:
        return self._batch.has_text

    def push_words(self, words: Iterable[Any]) -> int:
        """Aligned words ``(start, end, text)`` (seconds) for frames still to come; see
        :meth:`SessionBatch.push_words`. Raises :class:`LiveGestureError` for a model without text."""
        return self._batch.push_words(words)

    def push(self, chunk: np.ndarray) -> Motion:
        """Push a 1-D float32 chunk of any length (0 included); returns the Motion of the frames
        that became final with it (possibly 0 frames)."""
        if isinstance(chunk, np.ndarray) and chunk.ndim != 1:
            check_chunk(chunk)  # raises, naming the shape
        return self._batch.push([chunk])[0]

    def close(self) -> Motion:
        """End the stream and return the frames that remain. A final partial token (audio that
        ends inside a token's 4 frames) is NOT emitted, so at 16 kHz every frame was already
        returned by :meth:`push` and this is the empty Motion; when resampling it holds the frames
        completed by the resampler's tail."""
        return self._batch.close()[0]


class LiveGesture:
    """A loaded LiveGesture model: :meth:`stream` live sessions, :meth:`generate` whole clips."""

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle
        self.bundle.model.eval()
        self.bundle.tokenizer.eval()
        # streaming decode of the 4 region tokenizers as one grouped computation (stacked weights)
        self._decoder = GroupedDecoder(bundle.tokenizer)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> "LiveGesture":
        """Load a model file (``livegesture train all`` output); without a path, the bundled demo
        model (``livegesture/assets/demo_model.safetensors``, described by its MODEL_CARD.md)."""
        if path is None:
            from .assets import demo_model_path

            path = demo_model_path()
        return cls(ModelBundle.load(path, device))

    @property
    def sampling(self) -> SamplingConfig:
        return self.bundle.config.sampling

    @property
    def has_text(self) -> bool:
        """Whether the model takes aligned words as an optional cue (``push_words``, ``words=``)."""
        return self.bundle.model.config.text_vocab_size > 0 and self.bundle.vocab is not None

    def stream(self, seed: int = 0, sample_rate: int = SAMPLE_RATE,
               sampling: SamplingConfig | None = None, smoothing: SmoothingConfig | None = None
               ) -> StreamSession:
        """A new live session (seeded; `sampling` overrides the model file's sampling config;
        `smoothing` low-passes the emitted frames causally, adding about its ``tau`` of lag)."""
        return StreamSession(self, seed, sample_rate, sampling, smoothing)

    def stream_batch(self, n: int, seeds: Sequence[int] | None = None, sample_rate: int = SAMPLE_RATE,
                     sampling: SamplingConfig | None = None, smoothing: SmoothingConfig | None = None
                     ) -> SessionBatch:
        """`n` lockstep sessions advanced by one batched model call (seeds default to 0..n-1);
        see :class:`SessionBatch` for the equal-length rule."""
        seeds = list(range(n)) if seeds is None else list(seeds)
        if len(seeds) != n:
            raise LiveGestureError(f"{len(seeds)} seeds for {n} sessions")
        return SessionBatch(self, seeds, sample_rate, sampling, smoothing)

    def generate(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, seed: int = 0,
                 sampling: SamplingConfig | None = None, words: Iterable[Any] | None = None,
                 smoothing: SmoothingConfig | None = None) -> Motion:
        """Motion of a whole clip: exactly streaming it (one push of everything, then close).

        `audio` may be any array :func:`prepare_audio` accepts (float/int16/int32, mono or
        (samples, channels)); it is mixed to mono float32 first, then streamed at `sample_rate`.
        `words` (optional, models with text only): aligned words, pushed before the audio."""
        x = prepare_audio(audio, sample_rate, target_rate=sample_rate)  # dtype / channels only
        session = self.stream(seed, sample_rate, sampling, smoothing)
        if words is not None:
            session.push_words(words)
        return Motion.concatenate([session.push(x), session.close()])
