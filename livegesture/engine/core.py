"""The one stepping core under every front end (docs/design.md §1, §6).

:class:`EngineCore` holds ``capacity`` session rows of preallocated state (model caches,
tokenizer decoder histories, previous tokens, the carried samples of an unfinished token, the
running x/z translation) and runs every session through the same stages:

1. **audio**: every token a session completes is encoded on exactly that token's samples, one
   token per audio-encoder call (so a session's features do not depend on its packet sizes);
   sessions at the same token phase (token index mod 3: the same block length and mel framing)
   share one batched call;
2. **model step**: while sessions hold a token's 4 unconsumed feature frames, exactly those
   sessions are stepped together, one token each, in one batched :meth:`LiveGestureModel.step`
   (classifier-free guidance stream in the same call), and each token is drawn from the
   session's own seeded generator (R uniforms per token, inverse CDF);
3. **decoding**: the new tokens go through the grouped streaming tokenizer decoder one token
   per call (the sessions with a t-th new token share the call), are denormalised and turned
   into a :class:`Motion` (x/z translation integrated across calls);
4. **output stages**: each session's own causal chain (:mod:`livegesture.stages`).

Every computation is row-wise and row-invariant (products padded by
:mod:`livegesture.streaming.rows`), so a session's tokens and frames are bit-identical
whatever other sessions share its calls and whatever its push sizes: a lone
:class:`~livegesture.engine.StreamSession`, a lockstep
:class:`~livegesture.engine.SessionBatch` and the server's
:class:`~livegesture.engine.SessionPool` are thin front ends over this class and agree by
construction (``tests/engine/test_front_ends.py``). This holds at one intra-op thread; with
more, a large product or element-wise op may be split differently across threads.

Emission rule (the zero look-ahead contract): the 4 frames of token ``tau`` are emitted by the
first :meth:`EngineCore.run` after the session holds the audio up to the end of that token,
``ceil((4 tau + 4) * 1600 / 3)`` samples at 16 kHz. A final partial token is never emitted.

Not thread-safe: drive a core from one thread.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ..audio.encoder import frames_end_sample
from ..body.constants import FPS, REGIONS
from ..data.audio import SAMPLE_RATE, check_sample_rate, streaming_resampler
from ..data.textgrid import Word, add_words, word_ids_per_frame, words_still_due
from ..errors import AudioError, LiveGestureError
from ..model.config import FRAMES_PER_TOKEN, SamplingConfig
from ..model.sampling import sample_from_logits
from ..motion import Motion
from ..stages.base import FrameBlock, StageChain, StageContext, StageSpec
from ..streaming.conv import CausalConv1d
from ..streaming.state import StreamState, state_assign_, state_nbytes, state_reset_, state_select

__all__ = ["EngineCore", "PoolFullError", "check_chunk", "frames_from_regions", "session_cleanup",
           "stage_specs", "token_audio_time", "token_end_sample"]

_LOWER_VEL_X, _LOWER_VEL_Z = 54, 56  # lower-region features: x / z per-frame translation velocity
_RAW_CAP = 2144  # >= the 16 kHz samples of one token (ceil(4 * 1600 / 3) + 1 = 2134): a row's carried audio
#: sessions per audio-encoder call: keeps every call on the encoder's matmul conv path (<= 512 output
#: rows, about 14 mel frames per token and session), whose rounding does not depend on the batch
_ENCODE_GROUP = CausalConv1d.MATMUL_MAX_ROWS // 16


class PoolFullError(LiveGestureError):
    """Every row of the pool is taken."""


def token_end_sample(tau: int) -> int:
    """16 kHz samples up to the end of token `tau` (0 for tau = -1): when its frames can be emitted."""
    return frames_end_sample(FRAMES_PER_TOKEN * (tau + 1))


def token_audio_time(frame_index: int) -> float:
    """Seconds of 16 kHz audio that frame `frame_index` depends on: the end of its token's audio,
    ``ceil((4 tau + 4) * 1600 / 3) / 16000`` (the emission rule)."""
    return token_end_sample(frame_index // FRAMES_PER_TOKEN) / SAMPLE_RATE


def frames_from_regions(feats: dict[str, np.ndarray], offset: np.ndarray) -> Motion:
    """The Motion of one session's decoded region features; the x / z translation is the running
    sum of the lower region's per-frame velocities, continued from `offset` (2,), updated in place."""
    m = Motion.from_regions(feats)
    integrate_translation(m, feats["lower"], offset)
    return m


def integrate_translation(m: Motion, lower: np.ndarray, offset: np.ndarray) -> None:
    """Set `m`'s x / z translation (in place) to the running sum of the lower region's per-frame
    velocities (`lower` (T, 61)), continued from `offset` (2,), which is updated in place."""
    low = lower.astype(np.float64)
    for j, (axis, dim) in enumerate(((0, _LOWER_VEL_X), (2, _LOWER_VEL_Z))):
        pos = offset[j] + np.cumsum(low[:, dim])
        m.trans[:, axis] = pos.astype(np.float32)
        offset[j] = pos[-1]


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


def stage_specs(stages: Sequence[StageSpec] = (), smoothing: StageSpec | None = None,
                cleanup: StageSpec | None = None) -> list[StageSpec]:
    """A session's output chain from the front ends' arguments: the `cleanup` (first: it works on
    the decoder's frames), `stages` in order, then the optional `smoothing` low-pass (last, so that
    it smooths what the other stages produced)."""
    return [*([] if cleanup is None else [cleanup]), *stages, *([] if smoothing is None else [smoothing])]


def session_cleanup(engine: Any, cleanup: StageSpec | None) -> StageSpec:
    """The clean-up spec of a new session: `cleanup`, or the model file's default
    (``config.cleanup``: on for generated motion; ``CleanupConfig.off()`` is the raw output)."""
    return engine.bundle.config.cleanup if cleanup is None else cleanup


def _narrow(state: StreamState, lo: int, n: int) -> StreamState:
    return {k: _narrow(v, lo, n) if isinstance(v, dict) else v.narrow(0, lo, n) for k, v in state.items()}


def _leaves(state: StreamState):
    for v in state.values():
        if isinstance(v, dict):
            yield from _leaves(v)
        else:
            yield v


def _rows(state: StreamState, rows: list[int]) -> tuple[StreamState, bool]:
    """The state of `rows` and whether it must be written back with ``state_assign_``.

    Contiguous rows (the common case: a lone session, a lockstep batch, every pool session
    ready at once) are a slice of the core's tensors: a view, so the modules' in-place updates
    land in place and the gather/scatter copies are skipped. Other rows are gathered."""
    lo = rows[0]
    if rows == list(range(lo, lo + len(rows))):
        if lo == 0 and len(rows) == next(iter(_leaves(state))).shape[0]:
            return state, False  # every row: the state itself (the model caches its flat views)
        return _narrow(state, lo, len(rows)), False
    return state_select(state, rows), True


@dataclass
class _Session:
    sid: int
    row: int
    seed: int
    sample_rate: int
    generator: torch.Generator
    resampler: Any | None
    stages: StageChain
    queued: list[np.ndarray] = field(default_factory=list)  # 16 kHz audio pushed since the last run
    n_raw: int = 0                                            # carried samples (< 1 token) in the row's buffer
    feats: torch.Tensor | None = None                         # (F, d) encoded frames not yet stepped
    tokens: list[torch.Tensor] = field(default_factory=list)  # (R,) stepped tokens not yet decoded
    forced: list[torch.Tensor] = field(default_factory=list)  # (R,) tokens to take instead of sampling (prime)
    words: list[Word] = field(default_factory=list)           # aligned words that can still cover a frame
    last_tokens: torch.Tensor | None = None                   # (R, n) tokens decoded by the last run
    samples_pushed: int = 0    # input samples at the session's rate
    tokens_encoded: int = 0    # tokens whose audio went through the encoder
    tokens_stepped: int = 0
    frames_emitted: int = 0
    primed_frames: int = 0     # of which frames of primed history (not the session's own audio)
    finished: bool = False

    def n_feats(self) -> int:
        return 0 if self.feats is None else int(self.feats.shape[0])


class EngineCore:
    """``capacity`` session rows of one :class:`~livegesture.engine.LiveGesture` model.

    >>> core = EngineCore(model, capacity=4)
    >>> a = core.open(seed=0)
    >>> core.push(a, chunk)            # any length; nothing is computed yet
    >>> new = core.run()               # {sid: Motion of its new frames}
    >>> core.finish(a); core.run(); core.close(a)
    """

    def __init__(self, engine: Any, capacity: int, sampling: SamplingConfig | None = None):
        if capacity < 1:
            raise LiveGestureError(f"capacity must be >= 1, got {capacity}")
        self.engine, self.capacity = engine, int(capacity)
        self.sampling = sampling or engine.sampling
        b = engine.bundle
        self._bundle, self._model, self._decoder = b, b.model, engine._decoder
        model = self._model
        self._device = model.null_audio.device
        C = self.capacity
        self._state = model.init_state(C, guidance=self.sampling.guided)
        self._dec = self._decoder.init_state(C, self._device)
        self._prev = torch.full((C, model.num_regions, 1), model.bos_id, dtype=torch.long, device=self._device)
        self._raw = np.zeros((C, _RAW_CAP), np.float32)
        self._offset = np.zeros((C, 2), np.float64)  # running x / z translation per row
        self._free = list(range(C - 1, -1, -1))
        self._sessions: dict[int, _Session] = {}
        self._next_id = 1
        self.tokens_stepped = 0     # token steps run (summed over sessions)
        self.model_calls = 0        # batched model.step calls
        self.view_steps = 0         # of which on contiguous rows (no gather/scatter copies)
        # the compiled step of an engine loaded with compile=True: one-row cores only (.compiled)
        self._step = (engine.compiled_step(self.sampling) if C == 1 else None) or model.step
        self._decode_one = (engine.compiled_decode if C == 1 else None) or self._decoder.decode
        self._encode_one = (engine.compiled_encode if C == 1 else None) or model.audio_encoder.step

    # ------------------------------------------------------------------ sessions
    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, sid: int) -> bool:
        return sid in self._sessions

    @property
    def sessions(self) -> list[int]:
        return list(self._sessions)

    @property
    def has_text(self) -> bool:
        return self.engine.has_text

    def state_nbytes(self) -> int:
        """Bytes of the preallocated per-row tensors (constant for the core's lifetime)."""
        return (state_nbytes(self._state) + state_nbytes(self._dec) + self._prev.numel() * self._prev.element_size()
                + self._raw.nbytes + self._offset.nbytes)

    def open(self, seed: int = 0, sample_rate: int = SAMPLE_RATE, stages: Sequence[StageSpec] = ()) -> int:
        """A new session on a fresh row; returns its id. `stages`: specs of its output chain
        (:mod:`livegesture.stages`), built for this session. :class:`PoolFullError` when full."""
        sample_rate = check_sample_rate(sample_rate)
        if not self._free:
            raise PoolFullError(f"the server is full ({self.capacity} sessions); try again later")
        chain = StageChain.build(stages, StageContext(FPS, self._bundle, int(seed)))
        row = self._free.pop()
        sid = self._next_id
        self._next_id += 1
        gen = torch.Generator(device=self._device).manual_seed(int(seed))
        self._sessions[sid] = _Session(sid, row, int(seed), int(sample_rate), gen,
                                       streaming_resampler(sample_rate), chain)
        return sid

    def _get(self, sid: int) -> _Session:
        try:
            return self._sessions[sid]
        except KeyError:
            raise LiveGestureError(f"no open session {sid}") from None

    def push(self, sid: int, chunk: np.ndarray) -> None:
        """Queue a chunk (any length) of session `sid` for the next :meth:`run`. Bad chunks raise
        :class:`AudioError` and change nothing."""
        self.push_checked(sid, check_chunk(chunk))

    def push_checked(self, sid: int, x: np.ndarray) -> None:
        """:meth:`push` of a chunk already validated by :func:`check_chunk`."""
        s = self._get(sid)
        if s.finished:
            raise LiveGestureError(f"session {sid} has ended; no more audio can be pushed")
        s.samples_pushed += len(x)
        if s.resampler is not None:
            x = s.resampler.resample_chunk(x)
        if len(x):
            s.queued.append(x)

    def push_words(self, sid: int, words: Iterable[Any]) -> int:
        """Aligned words (:class:`Word`, ``(start, end, text)`` or ``{"word", "start", "end"}``;
        seconds of the session's audio): a frame gets the word whose [start, end) holds its centre
        if the word arrives before the frame's token is computed; late words are ignored (frames are
        never revised). Returns how many can still take effect."""
        s = self._get(sid)
        if not self.has_text:
            raise LiveGestureError("this model has no text input (it was trained without words); "
                                   "push audio only")
        s.words, n = add_words(s.words, words, s.tokens_stepped * FRAMES_PER_TOKEN / FPS)
        return n

    def finish(self, sid: int) -> None:
        """End of the session's audio: the resampler's tail is queued; later pushes are refused.
        A final partial token is never emitted."""
        s = self._get(sid)
        if s.finished:
            return
        if s.resampler is not None:
            tail = s.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                s.queued.append(np.ascontiguousarray(tail, np.float32))
        s.finished = True

    def close(self, sid: int) -> None:
        """Forget session `sid` and return its row to the fresh state (idempotent)."""
        s = self._sessions.pop(sid, None)
        if s is None:
            return
        mask = torch.zeros(self.capacity, dtype=torch.bool, device=self._device)
        mask[s.row] = True
        state_reset_(self._state, mask)
        state_reset_(self._dec, mask)
        self._prev[s.row] = self._model.bos_id
        self._offset[s.row] = 0.0
        self._free.append(s.row)

    def finished(self, sid: int) -> bool:
        return self._get(sid).finished

    def frames_emitted(self, sid: int) -> int:
        return self._get(sid).frames_emitted

    def samples_pushed(self, sid: int) -> int:
        return self._get(sid).samples_pushed

    def primed_frames(self, sid: int) -> int:
        """Frames of primed history (:meth:`prime`, :meth:`prime_motion`) counted in ``frames_emitted``:
        the session's own frame k is frame ``primed_frames + k`` of the core."""
        return self._get(sid).primed_frames

    def last_tokens(self, sid: int) -> torch.Tensor:
        """Token ids (R, n) decoded by the last :meth:`run` (regions in ``REGIONS`` order)."""
        s = self._get(sid)
        if s.last_tokens is None:
            return torch.zeros(self._model.num_regions, 0, dtype=torch.long)
        return s.last_tokens

    def pending_samples(self, sid: int) -> int:
        """16 kHz samples received and not encoded yet."""
        s = self._get(sid)
        return s.n_raw + sum(len(x) for x in s.queued)

    def ready_tokens(self, sid: int) -> int:
        """Tokens whose audio features are complete but that were not stepped yet."""
        return self._get(sid).n_feats() // FRAMES_PER_TOKEN

    def session_state_nbytes(self) -> int:
        """Bytes one row of the preallocated state takes."""
        return self.state_nbytes() // self.capacity

    def stage_state_nbytes(self, sid: int) -> int:
        return self._get(sid).stages.state_nbytes()

    # ------------------------------------------------------------------ priming
    def prime(self, sid: int, tokens: torch.Tensor, audio: np.ndarray | None = None) -> Motion:
        """Start a fresh session from given token history: exactly as if it had generated
        `tokens` (R, T) (ids < K) while hearing `audio` (16 kHz float32; default: silence of the
        T tokens' length, ``token_end_sample(T - 1)`` samples).

        Runs this session alone through the ordinary path with sampling replaced by the given
        tokens (its generator still draws its R uniforms per token, so the stream that follows is
        the one the generating session has): the model's caches, the decoder histories, the
        translation and the output stages end in the state generation leaves. Returns the Motion
        of the primed frames (counted in ``frames_emitted``; with longer `audio`, also the frames
        of further tokens it completes)."""
        s = self._get(sid)
        if s.samples_pushed or s.queued or s.tokens_encoded or s.finished:
            raise LiveGestureError("only a fresh session (no audio pushed yet) can be primed with tokens")
        R, K = self._model.num_regions, self._model.codebook_size
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        if tokens.dim() != 2 or tokens.shape[0] != R:
            raise LiveGestureError(f"prime tokens must be (regions={R}, T), got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= K):
            raise LiveGestureError(f"prime tokens must be code ids in [0, {K})")
        T = tokens.shape[1]
        need = token_end_sample(T - 1)
        x = np.zeros(need, np.float32) if audio is None else check_chunk(audio, "prime audio")
        if len(x) < need:
            raise AudioError(f"prime audio: {T} tokens need {need} samples at 16 kHz, got {len(x)}")
        s.forced = [tokens[:, t].to(self._device) for t in range(T)]
        if len(x):
            s.queued.append(x)
        out = self._run([s], frozenset())
        s.primed_frames = s.frames_emitted
        return out.get(sid, Motion.empty())

    def prime_motion(self, sid: int, motion: Motion) -> Motion:
        """Start a fresh session from seed motion (a pose, the avatar's current frames, the end of a
        previous clip): its tokens by the tokenizer encoder (:mod:`.seed`) prime the session over
        silence, then the output stages continue from `motion` itself, as it was shown. Returns the
        primed frames as decoded (not part of the session's own output)."""
        from .seed import MAX_SEED_TOKENS, seed_tokens

        s = self._get(sid)
        if s.samples_pushed or s.queued or s.tokens_encoded or s.finished:
            raise LiveGestureError("only a fresh session (no audio pushed yet) can start from seed motion")
        out = self.prime(sid, seed_tokens(self._bundle, motion))
        s.stages.prime(motion[max(0, len(motion) - MAX_SEED_TOKENS * FRAMES_PER_TOKEN):])
        return out

    # ------------------------------------------------------------------ the work
    @torch.no_grad()
    def run(self, hold: set[int] | frozenset[int] = frozenset()) -> dict[int, Motion]:
        """Process everything queued; returns ``{sid: Motion of the frames that became final}`` for
        the sessions that got frames. Sessions in `hold` are encoded but not stepped (back-pressure:
        their frames wait until they are no longer held)."""
        return self._run(list(self._sessions.values()), hold)

    @torch.no_grad()
    def _run(self, sessions: list[_Session], hold: set[int] | frozenset[int]) -> dict[int, Motion]:
        for s in sessions:
            s.last_tokens = None
        self._encode(sessions)
        self._step_tokens([s for s in sessions if s.sid not in hold])
        return self._decode(sessions)

    def _encode(self, sessions: list[_Session]) -> None:
        """Encode, per session, the audio of every token it completed, one token per encoder call and
        row (exactly that token's samples). Sessions at the same token phase share one call."""
        model = self._model
        audio: dict[int, np.ndarray] = {}
        for s in sessions:
            if not s.queued and not (s.finished and s.n_raw):
                continue  # (a finished session's carried samples are dropped below)
            parts = ([self._raw[s.row, :s.n_raw]] if s.n_raw else []) + s.queued
            audio[s.sid] = np.concatenate(parts) if len(parts) > 1 else parts[0]
            s.queued, s.n_raw = [], 0
        if not audio:
            return
        by_sid = {s.sid: s for s in sessions}
        used = dict.fromkeys(audio, 0)
        while True:
            # token phase k % 3 fixes the block length (2134, 2133, 2133) and the mel framing
            groups: dict[int, list[tuple[_Session, np.ndarray]]] = defaultdict(list)
            for sid, x in audio.items():
                s = by_sid[sid]
                k = s.tokens_encoded
                n = token_end_sample(k) - token_end_sample(k - 1)
                if len(x) - used[sid] >= n:
                    groups[k % 3].append((s, x[used[sid]:used[sid] + n]))
                    used[sid] += n
            if not groups:
                break
            for group in groups.values():
                group.sort(key=lambda g: g[0].row)
                for a in range(0, len(group), _ENCODE_GROUP):
                    self._encode_group(group[a:a + _ENCODE_GROUP])
        for sid, x in audio.items():
            s = by_sid[sid]
            rest = x[used[sid]:]  # less than a token; a finished session's is never emitted: dropped
            if len(rest) and not s.finished:
                self._raw[s.row, :len(rest)] = rest
                s.n_raw = len(rest)

    def _encode_group(self, group: list[tuple[_Session, np.ndarray]]) -> None:
        model = self._model
        rows = [s.row for s, _ in group]
        blocks = torch.from_numpy(np.stack([blk for _, blk in group])).to(self._device)
        sub, copied = _rows(self._state["audio"], rows)  # type: ignore[arg-type]
        feats = self._encode_one(blocks, sub)  # (B, 4, d): one token each
        if copied:
            state_assign_(self._state["audio"], rows, sub)  # type: ignore[arg-type]
        for i, (s, _) in enumerate(group):
            f = feats[i].to(model.null_audio.dtype)
            s.feats = f if s.feats is None or s.feats.shape[0] == 0 else torch.cat([s.feats, f])
            s.tokens_encoded += 1

    def _step_tokens(self, sessions: list[_Session]) -> None:
        model, K4 = self._model, FRAMES_PER_TOKEN
        keys = [k for k in self._state if k != "audio"]
        R = model.num_regions
        while True:
            ready = [s for s in sessions if s.n_feats() >= K4]
            if not ready:
                return
            ready.sort(key=lambda s: s.row)
            rows = [s.row for s in ready]
            idx = torch.tensor(rows, dtype=torch.long, device=self._device)
            sub, copied = _rows({k: self._state[k] for k in keys}, rows)
            feats = torch.stack([s.feats[:K4] for s in ready])  # type: ignore[index]
            if any(s.words for s in ready):
                vocab = self._bundle.vocab
                ids = np.stack([word_ids_per_frame(s.words, K4, vocab, start_frame=K4 * s.tokens_stepped)
                                for s in ready])
                feats = model.audio_encoder.embed_words(feats, torch.from_numpy(ids).to(self._device))
            prev = self._prev.narrow(0, rows[0], len(rows)) if not copied else self._prev.index_select(0, idx)
            logits = self._step(sub, feats, prev, self.sampling.guidance_scale)
            u = torch.stack([torch.rand(R, generator=s.generator, device=self._device, dtype=torch.float64)
                             for s in ready])
            tok = sample_from_logits(logits[:, :, 0], self.sampling, u)  # type: ignore[index]
            if any(s.forced for s in ready):  # primed sessions take their given tokens
                tok = tok.clone()
                for i, s in enumerate(ready):
                    if s.forced:
                        tok[i] = s.forced.pop(0)
            if copied:
                state_assign_({k: self._state[k] for k in keys}, idx, sub)
            else:
                self.view_steps += 1
            self._prev.index_copy_(0, idx, tok[:, :, None])
            for i, s in enumerate(ready):
                s.tokens.append(tok[i])
                s.feats = s.feats[K4:]  # type: ignore[index]
                s.tokens_stepped += 1
                if s.words:
                    s.words = words_still_due(s.words, s.tokens_stepped * K4 / FPS)
            self.tokens_stepped += len(ready)
            self.model_calls += 1

    def _decode(self, sessions: list[_Session]) -> dict[int, Motion]:
        """Decode every session's new tokens one token per grouped call (the sessions with a t-th new
        token share call t: the same shapes whatever the push sizes), then emit: sessions with the same
        number of new frames are denormalised and converted to poses together (row-wise maths), then
        each gets its translation and its output stages."""
        todo = sorted((s for s in sessions if s.tokens), key=lambda s: s.row)
        if not todo:
            return {}
        K4 = FRAMES_PER_TOKEN
        n_max = max(len(s.tokens) for s in todo)
        frames: list[torch.Tensor] | None = None  # per region (len(todo), 4 n_max, D_r)
        for t in range(n_max):
            idx = [i for i, s in enumerate(todo) if len(s.tokens) > t]
            rows = [todo[i].row for i in idx]
            ids = torch.stack([todo[i].tokens[t] for i in idx])[:, :, None]  # (B, R, 1)
            sub, copied = _rows(self._dec, rows)
            y = self._decode_one(ids, sub)  # per region (B, 4, D_r)
            if copied:
                state_assign_(self._dec, rows, sub)
            if frames is None:
                frames = [v.new_zeros(len(todo), K4 * n_max, v.shape[-1]) for v in y]
            if len(idx) == len(todo):
                for out, v in zip(frames, y):
                    out[:, K4 * t:K4 * (t + 1)] = v
            else:
                at = torch.tensor(idx, device=self._device)
                for out, v in zip(frames, y):
                    out[at, K4 * t:K4 * (t + 1)] = v
        assert frames is not None
        stats = self._bundle.stats
        groups: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(todo):
            groups[len(s.tokens)].append(i)
        out: dict[int, Motion] = {}
        for n, idx in groups.items():
            sel = slice(None) if len(idx) == len(todo) else torch.tensor(idx, device=self._device)
            feats = {r: stats.denormalize(r, frames[j][sel, :K4 * n].float().cpu().numpy())
                     for j, r in enumerate(REGIONS)}  # (G, 4n, D_r)
            poses = Motion.from_regions({r: v.reshape(-1, v.shape[-1]) for r, v in feats.items()})
            for g, i in enumerate(idx):
                s = todo[i]
                mine = {r: v[g] for r, v in feats.items()}
                m = poses[K4 * n * g:K4 * n * (g + 1)]
                m = Motion(m.poses.copy(), m.trans.copy(), m.expressions.copy(), m.betas, fps=m.fps)
                integrate_translation(m, mine["lower"], self._offset[s.row])
                s.last_tokens = torch.stack(s.tokens, dim=-1).cpu()
                s.tokens = []
                if len(s.stages):
                    m = s.stages.process(FrameBlock(s.frames_emitted, m, mine)).motion
                s.frames_emitted += len(m)
                out[s.sid] = m
        return out
