"""The bridge between the event loop and the model: one worker thread runs a :class:`SessionPool`.

Connection handlers never touch the pool. They put validated audio (and words, and the end
marker) into their session's inbox; a scheduler task wakes on new input, takes every inbox
and runs one job in the single model thread (push everything, one :meth:`SessionPool.run`:
batched model steps across sessions, encode the new frames), then hands each session its
encoded frames. The event loop stays free to read sockets while the model works.

Bounded everywhere, with back-pressure:

* a session's inbox holds at most ``max_queued_seconds`` of audio; a handler with a full inbox
  stops reading its socket until the model catches up (TCP then slows the client down);
* a session whose client has not read ``max_output_frames`` frames is *held*: its audio stays
  in its inbox and is not stepped; if it stays held longer than ``slow_client_timeout`` the
  session fails with a clear message ("reads too slowly") and is closed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from ..body.kinematics import forward_kinematics
from ..cleanup import CleanupConfig
from ..engine import LiveGesture
from ..engine import SessionPool, token_audio_time
from ..motion import Motion
from ..smoothing import SmoothingConfig
from .config import ServerConfig
from .metrics import ServerMetrics
from .protocol import StartMessage, encode_frame_binary, encode_frame_json

log = logging.getLogger("livegesture.serve")

END = object()  # inbox marker: the client sent "end"


@dataclass(eq=False)
class LiveSession:
    """Event-loop side of one session (the model side is a row of the pool)."""

    sid: int
    start: StartMessage
    inbox: list = field(default_factory=list)      # np.ndarray audio, ("words", list) or END, in order
    inbox_samples: int = 0
    out: asyncio.Queue = field(default_factory=asyncio.Queue)  # (payload, audio arrival, is frame) | None = end
    space: asyncio.Event = field(default_factory=asyncio.Event)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    fail_reason: str = ""
    fail_code: int = 1008
    received: deque = field(default_factory=deque)  # (cumulative input samples, monotonic time)
    samples_in: int = 0
    frames_out: int = 0
    end_requested: bool = False
    ended: bool = False
    held_since: float | None = None
    pool_closed: bool = False

    def __post_init__(self) -> None:
        self.space.set()

    def fail(self, reason: str, code: int = 1008) -> None:
        if not self.failed.is_set():
            self.fail_reason, self.fail_code = reason, code
            self.failed.set()
            self.space.set()  # wake a handler waiting for room

    def arrival_of(self, audio_time: float) -> float | None:
        """When the input sample that completed `audio_time` arrived (drops older records)."""
        need = math.ceil(audio_time * self.start.sample_rate - 1e-6)
        while self.received and self.received[0][0] < need:
            self.received.popleft()
        return self.received[0][1] if self.received else None


def _trim_heap() -> None:
    """Give the C heap's free memory back to the OS (glibc ``malloc_trim``) when the server goes idle:
    batches of new shapes leave freed blocks that glibc otherwise keeps, so the RSS of an idle
    server would not return to its baseline. Cyclic garbage is collected first: connections that
    ended in an error leave reference cycles (asyncio and uvicorn internals) that only a full
    collection frees (docs/deploy.md §5). No-op elsewhere."""
    global _LIBC
    gc.collect()
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018  (glibc only)
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


class Scheduler:
    """Owns the pool, its model thread and the sessions' inboxes."""

    def __init__(self, engine: LiveGesture, config: ServerConfig, metrics: ServerMetrics):
        self.engine, self.config, self.metrics = engine, config, metrics
        self.pool = SessionPool(engine, capacity=config.max_sessions)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="livegesture-model")
        self.sessions: dict[int, LiveSession] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopped = False
        self.ticks = 0
        self.released = 0

    # ------------------------------------------------------------------ lifecycle
    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def start(self, warmup: bool = True) -> None:
        if warmup:
            await self._call(self._warmup)
        self._task = asyncio.create_task(self._loop(), name="livegesture-scheduler")

    def _warmup(self) -> None:
        """One second of silence through a throwaway session: first calls are slow (allocator, kernels)."""
        sid = self.pool.open(0)
        try:
            self.pool.push(sid, np.zeros(16000, np.float32))
            self.pool.run()
        finally:
            self.pool.close(sid)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for s in list(self.sessions.values()):
            s.fail("the server is shutting down", 1001)
        self._stopped = True
        self.executor.shutdown(wait=True)

    # ------------------------------------------------------------------ handler side
    def _cleanup(self, start: StartMessage) -> CleanupConfig:
        """The session's clean-up from the start message's fields and the model's default."""
        if not start.cleanup:
            return CleanupConfig.off()
        cfg = self.engine.cleanup
        if start.root is not None or start.anchor is not None:
            root = replace(cfg.root, mode=start.root or cfg.root.mode,
                           anchor=start.anchor if start.anchor is not None else cfg.root.anchor)
            cfg = replace(cfg, root=root)
        return cfg

    def _open_row(self, start: StartMessage) -> int:
        """Model thread: a pool session for `start`, started from its seed frames if it has any."""
        smoothing = SmoothingConfig(start.smooth) if start.smooth else None
        sid = self.pool.open(start.seed, start.sample_rate, smoothing, (), self._cleanup(start))
        if start.seed_poses is not None:
            n = len(start.seed_poses)
            expr = np.zeros((n, 100), np.float32) if start.seed_expressions is None else start.seed_expressions
            seed = Motion(np.asarray(start.seed_poses, np.float32).reshape(n, 55, 3),
                          np.asarray(start.seed_trans, np.float32), np.asarray(expr, np.float32))
            try:
                self.pool.prime_motion(sid, seed)
            except Exception:
                self.pool.close(sid)
                raise
        return sid

    async def open(self, start: StartMessage) -> LiveSession:
        sid = await self._call(self._open_row, start)
        s = LiveSession(sid, start)
        self.sessions[sid] = s
        self.metrics.session_opened()
        return s

    async def push_audio(self, s: LiveSession, audio: np.ndarray) -> None:
        """Queue audio; waits (not reading the socket meanwhile) while the inbox is full."""
        limit = int(self.config.max_queued_seconds * s.start.sample_rate)
        while s.inbox_samples >= limit and not s.failed.is_set():
            s.space.clear()
            await s.space.wait()
        if s.failed.is_set():
            return
        s.inbox.append(audio)
        s.inbox_samples += len(audio)
        s.samples_in += len(audio)
        s.received.append((s.samples_in, time.monotonic()))
        self.metrics.audio_received(len(audio) / s.start.sample_rate)
        self._wake.set()

    def push_words(self, s: LiveSession, words: list[dict]) -> None:
        s.inbox.append(("words", words))
        self._wake.set()

    def end(self, s: LiveSession) -> None:
        s.end_requested = True
        s.inbox.append(END)
        self._wake.set()

    def frame_taken(self, s: LiveSession) -> None:
        """The handler sent a frame: a held session may run again."""
        if s.held_since is not None and s.out.qsize() < self.config.max_output_frames:
            self._wake.set()

    async def release(self, s: LiveSession) -> None:
        """Forget the session and free its pool row (idempotent)."""
        self.sessions.pop(s.sid, None)
        if not s.pool_closed:
            s.pool_closed = True
            if not self._stopped:  # after shutdown the pool is gone with the process
                await self._call(self.pool.close, s.sid)
                self.released += 1
                # idle, or every 64 sessions when the start-up objects are frozen (livegesture serve:
                # a full collection then takes milliseconds instead of ~0.4 s): see _trim_heap
                if not self.sessions or (self.released % 64 == 0 and gc.get_freeze_count()):
                    await self._call(_trim_heap)
            self.metrics.session_closed()

    # ------------------------------------------------------------------ the scheduler task
    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=0.2)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the server: fail the sessions of this tick
                log.exception("scheduler tick failed")
                for s in list(self.sessions.values()):
                    s.fail("internal server error", 1011)
                self.metrics.error("internal")

    async def _tick(self) -> None:
        now = time.monotonic()
        jobs: dict[int, list] = {}
        hold: set[int] = set()
        for s in list(self.sessions.values()):
            if s.failed.is_set() or s.ended:
                continue
            if s.out.qsize() >= self.config.max_output_frames:
                hold.add(s.sid)
                s.held_since = s.held_since or now
                if now - s.held_since > self.config.slow_client_timeout:
                    s.fail(f"client reads too slowly: {s.out.qsize()} frames waited more than "
                           f"{self.config.slow_client_timeout:g} s; session closed")
                    self.metrics.error("slow_client")
                continue
            s.held_since = None
            if s.inbox:
                jobs[s.sid] = s.inbox
                s.inbox, s.inbox_samples = [], 0
                s.space.set()
        if not jobs and not any(s.held_since is None and not s.ended for s in self.sessions.values()):
            return
        results, errors, done = await self._call(self._work, jobs, hold, dict(self.sessions))
        self.ticks += 1
        for sid, reason in errors.items():
            s = self.sessions.get(sid)
            if s is not None:
                s.fail(reason)
                self.metrics.error("bad_input")
        for sid, frames in results.items():
            s = self.sessions.get(sid)
            if s is None or s.failed.is_set():
                continue
            for index, t, payload in frames:
                s.out.put_nowait((payload, s.arrival_of(t), True))
                s.frames_out += 1
        for sid in done:
            s = self.sessions.get(sid)
            if s is not None and not s.failed.is_set() and not s.ended:
                s.ended = True
                s.out.put_nowait(None)

    # ------------------------------------------------------------------ model thread
    def _work(self, jobs: dict[int, list], hold: set[int], sessions: dict[int, LiveSession]):
        """Runs in the model thread: push inputs in order, one pool run, encode the new frames.
        `sessions` is a snapshot taken by the event loop (the loop may change its own dict meanwhile)."""
        errors: dict[int, str] = {}
        pool = self.pool
        for sid, items in jobs.items():
            try:
                for it in items:
                    if it is END:
                        pool.finish(sid)
                    elif isinstance(it, tuple):
                        pool.push_words(sid, it[1])
                    else:
                        pool.push(sid, it)
            except Exception as exc:  # noqa: BLE001  (reported to that client only)
                errors[sid] = str(exc)
        t0 = time.perf_counter()
        calls0 = pool.model_calls
        tokens0 = pool.tokens_stepped
        motions = pool.run(hold=frozenset(hold) | frozenset(errors))
        self.metrics.model_work(time.perf_counter() - t0, pool.model_calls - calls0, pool.tokens_stepped - tokens0)
        results = {}
        for sid, m in motions.items():
            s = sessions.get(sid)
            if s is None:
                continue
            # the session's own frame indices start at 0 after any seed frames it was primed with
            results[sid] = self._encode(s, m, pool.frames_emitted(sid) - len(m) - pool.primed_frames(sid))
        done = [sid for sid in sessions
                if sid in pool and sid not in errors and sid not in hold and pool.finished(sid)
                and pool.pending_samples(sid) == 0 and pool.ready_tokens(sid) == 0]
        return results, errors, done

    def _encode(self, s: LiveSession, m: Motion, first: int) -> list[tuple[int, float, str | bytes]]:
        joints = forward_kinematics(m).reshape(len(m), -1) if s.start.joints else None
        enc = encode_frame_binary if s.start.output == "binary" else encode_frame_json
        out = []
        for k in range(len(m)):
            i = first + k
            t = token_audio_time(i)
            out.append((i, t, enc(i, t, m.poses[k], m.trans[k], m.expressions[k],
                                  None if joints is None else joints[k])))
        return out
