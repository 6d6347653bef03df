"""Python client of the LiveGesture WebSocket protocol (``websockets`` library).

>>> result = stream_file("speech.wav", "ws://127.0.0.1:8000/ws")   # real-time pacing
>>> result.motion.save("out.npz"); result.latency_percentiles()
>>> stream_file("speech.wav", "ws://127.0.0.1:8000/ws", vmc="127.0.0.1:39539")   # also forward to VMC

:func:`stream_audio` sends audio in fixed packets (20 ms by default), paced in real time or
as fast as the server takes it, while a concurrent task receives the frames. Each frame's
latency is measured on the client: receive time minus the send time of the packet that
completed the audio the frame depends on (its ``audio_time``).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from ..errors import LiveGestureError
from ..motion import Motion
from .protocol import MAX_SEED_FRAMES, decode_frame_binary

if TYPE_CHECKING:
    from ..vmc import VmcSender

__all__ = ["ServerError", "StreamResult", "stream_audio", "stream_audio_sync", "stream_file", "ws_url"]


class ServerError(LiveGestureError):
    """The server ended the session with an error message, or refused or could not be reached."""


def ws_url(url: str) -> str:
    """The WebSocket URL of a server address: ``http(s)://`` becomes ``ws(s)://`` and ``/ws`` is
    appended when missing (``http://127.0.0.1:8000/`` -> ``ws://127.0.0.1:8000/ws``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise LiveGestureError(f"--url {url}: expected ws://HOST:PORT/ws (or wss://, http://, https://)")
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, parts.netloc, path if path.endswith("/ws") else path + "/ws", parts.query, ""))


def _connect_error(url: str, exc: BaseException) -> ServerError:
    """One line for a connection that did not open (no server, refused handshake, timeout)."""
    import websockets

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        body = (getattr(exc.response, "body", b"") or b"").decode(errors="replace").strip()
        why = body.splitlines()[0][:200] if body and not body.startswith("<") else ""  # not a proxy's HTML page
        hint = {403: " (the token is missing or wrong, the Origin is not allowed, or the path is not /ws)",
                404: " (no LiveGesture WebSocket at this path: it is /ws)"}.get(status, "")
        return ServerError(f"{url}: the server refused the connection: HTTP {status}"
                           f"{': ' + why if why else hint}")
    if isinstance(exc, ConnectionRefusedError):
        return ServerError(f"{url}: connection refused; is 'livegesture serve' running there?")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return ServerError(f"{url}: no answer within the connection timeout")
    if isinstance(exc, websockets.InvalidURI):
        return ServerError(f"{url}: not a WebSocket URL (ws://HOST:PORT/ws)")
    return ServerError(f"{url}: cannot connect ({exc.__class__.__name__}: {exc})")


@dataclass
class StreamResult:
    """What came back for one session."""

    motion: Motion
    indices: np.ndarray          # (T,) frame indices as received
    audio_times: np.ndarray      # (T,) s
    latencies: np.ndarray        # (T,) s, client-measured (receive - send of the completing packet)
    joints: np.ndarray | None    # (T, 55, 3) when requested
    started: dict[str, Any]
    ended: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    def latency_percentiles(self, qs: Iterable[float] = (50, 95, 99)) -> dict[float, float]:
        if not len(self.latencies):
            return {q: float("nan") for q in qs}
        return {q: float(np.percentile(self.latencies, q)) for q in qs}


def to_pcm16(audio: np.ndarray) -> bytes:
    """float32 [-1, 1] -> little-endian int16 bytes (clipped, rounded)."""
    return np.clip(np.round(np.asarray(audio, np.float64) * 32768.0), -32768, 32767).astype("<i2").tobytes()


async def stream_audio(url: str, audio: np.ndarray, sample_rate: int = 16000, seed: int = 0,
                       packet_ms: float = 20.0, realtime: bool = True, fmt: str = "pcm16",
                       output: str = "binary", joints: bool = False, words: list[dict] | None = None,
                       smooth: float = 0.0, cleanup: bool = True, root: str | None = None,
                       anchor: tuple[float, float] | None = None, seed_motion: Motion | None = None,
                       on_frame: Callable[[dict], None] | None = None, open_timeout: float = 10.0,
                       token: str | None = None, vmc: "str | VmcSender | None" = None) -> StreamResult:
    """Stream mono float32 `audio` at `sample_rate` to the server at `url` (``ws://host:port/ws``) and
    collect the frames. Raises :class:`ServerError` with the server's message on an error, or why
    the connection could not be made. `token`: the server's access token (sent as a Bearer header).
    `cleanup` False asks for the raw model output, `root` / `anchor` for other root control,
    `seed_motion` (its last 24 frames at most) for the pose the session starts from (docs/protocol.md).
    `vmc` (``HOST:PORT`` or a :class:`~livegesture.vmc.VmcSender`) forwards every frame to a VMC
    receiver as it arrives.

    With ``fmt="pcm16"`` the samples are rounded to 16 bits on the way, so the frames equal
    ``generate``'s on the rounded audio; ``fmt="f32"`` sends float32 and gives ``generate``'s on the
    audio itself (to float rounding: the server batches sessions in one model call)."""
    import websockets

    if vmc is not None:
        on_frame = _forward_to_vmc(vmc, on_frame)

    x = np.asarray(audio, np.float32)
    if x.ndim != 1:
        raise LiveGestureError(f"audio must be 1-D mono, got shape {x.shape}")
    if fmt not in ("pcm16", "f32") or output not in ("json", "binary"):
        raise LiveGestureError(f"format must be pcm16|f32 and output json|binary, got {fmt!r}, {output!r}")
    n = max(1, int(round(packet_ms * sample_rate / 1000)))
    sent_at: list[float] = []     # send time of each packet
    sent_end: list[int] = []      # cumulative samples after each packet
    frames: list[dict] = []
    recv_at: list[float] = []
    warnings: list[str] = []
    result: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        conn = await websockets.connect(url, open_timeout=open_timeout, max_size=2 ** 22,
                                        additional_headers=headers)
    except (OSError, asyncio.TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake) as exc:
        raise _connect_error(url, exc) from None
    async with conn as ws:
        start: dict[str, Any] = {"type": "start", "seed": int(seed), "sample_rate": int(sample_rate),
                                 "format": fmt, "output": output, "joints": bool(joints),
                                 "smooth": float(smooth), "cleanup": bool(cleanup)}
        if root is not None:
            start["root"] = root
        if anchor is not None:
            start["anchor"] = [float(v) for v in anchor]
        if seed_motion is not None:
            tail = seed_motion[max(0, len(seed_motion) - MAX_SEED_FRAMES):]
            start.update(seed_poses=tail.poses.reshape(len(tail), -1).astype(float).tolist(),
                         seed_trans=tail.trans.astype(float).tolist(),
                         seed_expressions=tail.expressions.astype(float).tolist())
        await ws.send(json.dumps(start))
        started = json.loads(await ws.recv())
        if started.get("type") == "error":
            raise ServerError(started.get("message", "error"))
        if words:
            await ws.send(json.dumps({"type": "words", "words": list(words)}))

        async def send() -> None:
            t0 = time.monotonic()
            for k, a in enumerate(range(0, len(x), n)):
                if realtime:
                    delay = t0 + k * n / sample_rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                chunk = x[a:a + n]
                data = to_pcm16(chunk) if fmt == "pcm16" else chunk.astype("<f4").tobytes()
                sent_at.append(time.monotonic())
                sent_end.append(a + len(chunk))
                await ws.send(data)
            await ws.send(json.dumps({"type": "end"}))

        sender = asyncio.create_task(send())
        t_start = time.monotonic()
        try:
            async for msg in ws:
                now = time.monotonic()
                if isinstance(msg, bytes):
                    frames.append(decode_frame_binary(msg))
                    recv_at.append(now)
                    if on_frame:
                        on_frame(frames[-1])
                    continue
                m = json.loads(msg)
                kind = m.get("type")
                if kind == "frame":
                    frames.append(m)
                    recv_at.append(now)
                    if on_frame:
                        on_frame(m)
                elif kind == "ended":
                    result["ended"] = m
                    break
                elif kind == "error":
                    if m.get("fatal", True):
                        raise ServerError(m.get("message", "error"))
                    warnings.append(m.get("message", ""))
            else:
                raise ServerError(f"the server closed the connection before the end "
                                  f"(code {ws.close_code}, {ws.close_reason!r})")
            await sender
        finally:
            if not sender.done():
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
        wall = time.monotonic() - t_start
    T = len(frames)
    poses = np.array([np.asarray(f["poses"], np.float32) for f in frames], np.float32).reshape(T, 165)
    trans = np.array([np.asarray(f["trans"], np.float32) for f in frames], np.float32).reshape(T, 3)
    expr = np.array([np.asarray(f["expressions"], np.float32) for f in frames], np.float32).reshape(T, 100)
    jts = None
    if joints:
        jts = np.array([np.asarray(f["joints"], np.float32) for f in frames], np.float32).reshape(T, 55, 3)
    idx = np.array([f["index"] for f in frames], np.int64)
    times = np.array([f["audio_time"] for f in frames], np.float64)
    lat = np.empty(T)
    for i in range(T):
        need = math.ceil(times[i] * sample_rate - 1e-6)
        k = bisect.bisect_left(sent_end, need)
        lat[i] = recv_at[i] - sent_at[k] if k < len(sent_at) else float("nan")
    return StreamResult(Motion(poses, trans, expr), idx, times, lat[np.isfinite(lat)], jts, started,
                        result.get("ended"), warnings, len(x) / sample_rate, wall)


def _forward_to_vmc(vmc: "str | VmcSender", then: Callable[[dict], None] | None) -> Callable[[dict], None]:
    """An on_frame callback that sends each received frame to VMC (then calls `then`)."""
    from ..body.constants import FPS
    from ..vmc import VmcSender

    sender = vmc if isinstance(vmc, VmcSender) else VmcSender(vmc)

    def forward(frame: dict) -> None:
        poses = np.asarray(frame["poses"], np.float64).reshape(1, 55, 3)
        sender.send_frames(poses, np.asarray(frame["trans"], np.float64).reshape(1, 3),
                           np.array([frame["index"] / FPS]))
        if then is not None:
            then(frame)

    if sender is not vmc:  # opened here from an address: closed with the callback, after the session
        import weakref

        weakref.finalize(forward, sender.close)
    return forward


def stream_audio_sync(*args: Any, **kwargs: Any) -> StreamResult:
    """:func:`stream_audio` from synchronous code (runs its own event loop)."""
    return asyncio.run(stream_audio(*args, **kwargs))


def stream_file(path: str | os.PathLike, url: str, sample_rate: int = 16000, **kwargs: Any) -> StreamResult:
    """Stream a speech file (any format soundfile reads; resampled to `sample_rate`, 16 kHz by default)."""
    from ..data.audio import load_audio

    return stream_audio_sync(url, load_audio(path, sample_rate), sample_rate=sample_rate, **kwargs)
