"""Independent live sessions served by one model: :class:`SessionPool` (the server's engine layer).

:class:`~livegesture.engine.SessionBatch` needs lockstep sessions (equal chunks); a server
cannot promise that, since every client sends its own packet sizes at its own times. A pool
keeps every session's streaming state in its own row of preallocated tensors (model state,
tokenizer decoder states, previous tokens) and on each :meth:`SessionPool.run`:

1. encodes the audio of every token a session completed, one token per call and row, exactly
   as :class:`~livegesture.engine.SessionBatch` does (sessions at the same token phase share
   one batched audio-encoder call; rows gathered with ``state_select``, written back with
   ``state_assign_``);
2. while some sessions hold >= 4 unconsumed feature frames, steps exactly those sessions
   together, one token each, in one batched :meth:`LiveGestureModel.step` (gather their rows,
   step, scatter back), sampling each token from the session's own seeded generator;
3. decodes each session's new tokens with its decoder rows and returns the new frames.

Every computation is row-wise, so a session's frames equal what
:meth:`LiveGesture.generate` gives for its audio and seed, whatever the other sessions do
(up to float rounding of different batch shapes). Memory is allocated once for
``capacity`` sessions; :meth:`SessionPool.open` refuses more and :meth:`SessionPool.close`
returns a row to the fresh state. Not thread-safe: drive a pool from one thread.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

from .body.constants import REGIONS
from .body.constants import FPS
from .data.audio import SAMPLE_RATE, check_sample_rate, streaming_resampler
from .data.textgrid import add_words, word_ids_per_frame, words_still_due
from .engine import LiveGesture, check_chunk, frames_from_regions, token_end_sample
from .errors import LiveGestureError
from .model.config import FRAMES_PER_TOKEN, SamplingConfig
from .model.sampling import sample_from_logits
from .motion import Motion
from .smoothing import CausalSmoother, SmoothingConfig
from .streaming.state import state_assign_, state_nbytes, state_reset_, state_select

__all__ = ["PoolFullError", "SessionPool", "token_audio_time"]


def _rows(state: dict, rows: list[int]) -> tuple[dict, bool]:
    """The state of `rows` and whether it must be written back with ``state_assign_``.

    Contiguous rows (the common case when every session is ready at once) are a slice of the
    pool's tensors: a view, so the modules' in-place state updates land in the pool directly and
    the gather/scatter copies (about a third of a token step at demo size) are skipped. Other rows
    are gathered into a copy."""
    lo = rows[0]
    if rows == list(range(lo, lo + len(rows))):
        return _narrow(state, lo, len(rows)), False
    return state_select(state, rows), True


def _narrow(state: dict, lo: int, n: int) -> dict:
    return {k: _narrow(v, lo, n) if isinstance(v, dict) else v.narrow(0, lo, n) for k, v in state.items()}


class PoolFullError(LiveGestureError):
    """Every row of the pool is taken."""


def token_audio_time(frame_index: int) -> float:
    """Seconds of 16 kHz audio that frame `frame_index` depends on: the end of its token's audio,
    ``ceil((4 tau + 4) * 1600 / 3) / 16000`` (the engine's emission rule)."""
    return token_end_sample(frame_index // FRAMES_PER_TOKEN) / SAMPLE_RATE


@dataclass
class _Session:
    sid: int
    row: int
    seed: int
    sample_rate: int
    generator: torch.Generator
    resampler: object | None
    queued: list[np.ndarray] = field(default_factory=list)  # 16 kHz audio not yet encoded
    feats: torch.Tensor | None = None                        # (F, d) frames not yet consumed
    tokens: list[torch.Tensor] = field(default_factory=list)  # (R,) tokens not yet decoded
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float64))
    words: list = field(default_factory=list)                # aligned words that can still cover a frame
    samples_pushed: int = 0
    tokens_encoded: int = 0    # tokens whose audio went through the encoder (token_end_sample(k - 1) samples)
    tokens_stepped: int = 0
    frames_emitted: int = 0
    finished: bool = False
    smoother: CausalSmoother | None = None  # optional causal low-pass of the emitted frames

    def n_feats(self) -> int:
        return 0 if self.feats is None else int(self.feats.shape[0])


class SessionPool:
    """Up to `capacity` independent live sessions of one :class:`LiveGesture` model.

    >>> pool = SessionPool(model, capacity=8)
    >>> a, b = pool.open(seed=0), pool.open(seed=1)
    >>> pool.push(a, chunk_a); pool.push(b, chunk_b)   # any lengths, any times
    >>> new = pool.run()                               # {session: Motion of its new frames}
    >>> pool.finish(a); pool.run(); pool.close(a)      # end of stream, then free the row
    """

    def __init__(self, engine: LiveGesture, capacity: int = 32, sampling: SamplingConfig | None = None):
        if capacity < 1:
            raise LiveGestureError(f"pool capacity must be >= 1, got {capacity}")
        self.engine, self.capacity = engine, int(capacity)
        self.sampling = sampling or engine.sampling
        b, model = engine.bundle, engine.bundle.model
        self._model, self._bundle = model, b
        self._device = model.null_audio.device
        self._state = model.init_state(self.capacity, guidance=self.sampling.guided)
        self._dec = {r: b.tokenizer[r].init_decode_state(self.capacity, self._device) for r in REGIONS}
        self._prev = torch.full((self.capacity, model.num_regions, 1), model.bos_id, dtype=torch.long,
                                device=self._device)
        self._free = list(range(self.capacity - 1, -1, -1))
        self._sessions: dict[int, _Session] = {}
        self._next_id = 1
        self.tokens_stepped = 0     # token steps run (summed over sessions)
        self.model_calls = 0        # batched model.step calls
        self.view_steps = 0         # of which on contiguous rows (no gather/scatter copies)

    # ------------------------------------------------------------------ sessions
    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, sid: int) -> bool:
        return sid in self._sessions

    @property
    def sessions(self) -> list[int]:
        return list(self._sessions)

    def state_nbytes(self) -> int:
        """Bytes of the preallocated per-row tensors (constant for the pool's lifetime)."""
        return (state_nbytes(self._state) + sum(state_nbytes(s) for s in self._dec.values())
                + self._prev.numel() * self._prev.element_size())

    def open(self, seed: int = 0, sample_rate: int = SAMPLE_RATE, smoothing: SmoothingConfig | None = None) -> int:
        """A new session; returns its id. Raises :class:`PoolFullError` when every row is taken.
        `smoothing`: the causal output low-pass of :mod:`livegesture.smoothing` (off by default)."""
        sample_rate = check_sample_rate(sample_rate)
        if not self._free:
            raise PoolFullError(f"the server is full ({self.capacity} sessions); try again later")
        resampler = streaming_resampler(sample_rate)
        row = self._free.pop()
        sid = self._next_id
        self._next_id += 1
        gen = torch.Generator(device=self._device).manual_seed(int(seed))
        smoother = None if smoothing is None or smoothing.tau == 0 else CausalSmoother(smoothing, FPS)
        self._sessions[sid] = _Session(sid, row, int(seed), int(sample_rate), gen, resampler, smoother=smoother)
        return sid

    def _get(self, sid: int) -> _Session:
        try:
            return self._sessions[sid]
        except KeyError:
            raise LiveGestureError(f"no open session {sid}") from None

    def push(self, sid: int, chunk: np.ndarray) -> None:
        """Queue a 1-D float32 chunk (any length) of session `sid`; :meth:`run` processes it.
        Bad chunks raise :class:`AudioError` and change nothing."""
        s = self._get(sid)
        if s.finished:
            raise LiveGestureError(f"session {sid} has ended; no more audio can be pushed")
        x = check_chunk(chunk)
        s.samples_pushed += len(x)
        if s.resampler is not None:
            x = s.resampler.resample_chunk(x)  # type: ignore[attr-defined]
        if len(x):
            s.queued.append(x)

    @property
    def has_text(self) -> bool:
        return self.engine.has_text

    def push_words(self, sid: int, words) -> int:
        """Aligned words (``{"word", "start", "end"}``, ``(start, end, text)`` or :class:`Word`; seconds of
        the session's audio) as in :meth:`StreamSession.push_words`: a frame gets the word holding its
        centre if the word arrives before the frame's token is computed (by a later :meth:`run`);
        late words are ignored. Returns how many can still take effect."""
        s = self._get(sid)
        if not self.has_text:
            raise LiveGestureError("this model has no text input (it was trained without words); "
                                   "send audio only")
        s.words, n = add_words(s.words, words, s.tokens_stepped * FRAMES_PER_TOKEN / FPS)
        return n

    def finish(self, sid: int) -> None:
        """End of the session's audio: the resampler's tail is queued; later pushes are refused.
        A final partial token is never emitted (as in :meth:`StreamSession.close`)."""
        s = self._get(sid)
        if s.finished:
            return
        if s.resampler is not None:
            tail = s.resampler.resample_chunk(np.zeros(0, np.float32), last=True)  # type: ignore[attr-defined]
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
        for d in self._dec.values():
            state_reset_(d, mask)
        self._prev[s.row] = self._model.bos_id
        self._free.append(s.row)

    def finished(self, sid: int) -> bool:
        """Whether :meth:`finish` was called for the session."""
        return self._get(sid).finished

    def frames_emitted(self, sid: int) -> int:
        return self._get(sid).frames_emitted

    def pending_samples(self, sid: int) -> int:
        """16 kHz samples queued and not encoded yet."""
        return sum(len(x) for x in self._get(sid).queued)

    def ready_tokens(self, sid: int) -> int:
        """Tokens whose audio features are complete but that were not stepped yet."""
        return self._get(sid).n_feats() // FRAMES_PER_TOKEN

    # ------------------------------------------------------------------ the work
    @torch.no_grad()
    def run(self, hold: set[int] | frozenset[int] = frozenset()) -> dict[int, Motion]:
        """Process everything queued; returns ``{sid: Motion of the frames that became final}`` for
        the sessions that got frames. Sessions in `hold` are encoded but not stepped (back-pressure:
        their frames wait until they are no longer held)."""
        self._encode()
        self._step_tokens(hold)
        return self._decode()

    def _encode(self) -> None:
        """Encode, per session, the audio of every token it completed, one token per encoder call and
        row (exactly that token's samples, as :class:`~livegesture.engine.SessionBatch` does, so a
        session's features do not depend on its packet sizes). Sessions at the same token phase
        (token index mod 3: the same block length and mel framing) share one batched call."""
        model = self._model
        audio: dict[int, np.ndarray] = {}
        for s in self._sessions.values():
            if s.queued:
                audio[s.sid] = np.concatenate(s.queued) if len(s.queued) > 1 else s.queued[0]
        used = dict.fromkeys(audio, 0)
        while True:
            # token phase k % 3 fixes the block length (2134, 2133, 2133) and the mel framing
            groups: dict[int, list[tuple[_Session, np.ndarray]]] = defaultdict(list)
            for sid, x in audio.items():
                s = self._sessions[sid]
                k = s.tokens_encoded
                n = token_end_sample(k) - token_end_sample(k - 1)
                if len(x) - used[sid] >= n:
                    groups[k % 3].append((s, x[used[sid]:used[sid] + n]))
                    used[sid] += n
            if not groups:
                break
            for group in groups.values():
                rows = [s.row for s, _ in group]
                blocks = torch.from_numpy(np.stack([blk for _, blk in group])).to(self._device)
                sub, copied = _rows(self._state["audio"], rows)  # type: ignore[arg-type]
                feats = model.encode_audio(blocks, {"audio": sub})  # (B, 4, d): one token each
                if copied:
                    state_assign_(self._state["audio"], rows, sub)  # type: ignore[arg-type]
                for i, (s, _) in enumerate(group):
                    f = feats[i].to(model.null_audio.dtype)
                    s.feats = f if s.feats is None else torch.cat([s.feats, f])
                    s.tokens_encoded += 1
        for sid, x in audio.items():
            s = self._sessions[sid]
            rest = x[used[sid]:]  # less than a token; a finished session's is never emitted: dropped
            s.queued = [rest] if len(rest) and not s.finished else []

    def _step_tokens(self, hold: set[int] | frozenset[int]) -> None:
        model, K4 = self._model, FRAMES_PER_TOKEN
        keys = [k for k in self._state if k != "audio"]
        while True:
            ready = [s for s in self._sessions.values() if s.n_feats() >= K4 and s.sid not in hold]
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
            logits = model.step(sub, feats, self._prev.index_select(0, idx), self.sampling.guidance_scale)
            R = model.num_regions
            u = torch.stack([torch.rand(R, generator=s.generator, device=self._device, dtype=torch.float64)
                             for s in ready])
            tok = sample_from_logits(logits[:, :, 0], self.sampling, u)  # type: ignore[index]
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

    def _decode(self) -> dict[int, Motion]:
        b = self._bundle
        groups: dict[int, list[_Session]] = defaultdict(list)
        for s in self._sessions.values():
            if s.tokens:
                groups[len(s.tokens)].append(s)
        out: dict[int, Motion] = {}
        for n, group in groups.items():
            rows = [s.row for s in group]
            tokens = torch.stack([torch.stack(s.tokens, dim=-1) for s in group])  # (B, R, n)
            feats = {}
            for i, r in enumerate(REGIONS):
                sub, copied = _rows(self._dec[r], rows)
                y = b.tokenizer[r].decode(tokens[:, i], sub)
                if copied:
                    state_assign_(self._dec[r], rows, sub)
                feats[r] = b.stats.denormalize(r, y.float().cpu().numpy())
            for j, s in enumerate(group):
                m = frames_from_regions({r: v[j] for r, v in feats.items()}, s.offset)
                if s.smoother is not None:
                    m = s.smoother(m)
                s.tokens = []
                s.frames_emitted += len(m)
                out[s.sid] = m
        return out
