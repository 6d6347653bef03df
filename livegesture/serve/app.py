"""The ASGI app: ``/ws`` (the protocol of :mod:`livegesture.serve.protocol`), ``/health``,
``/metrics`` (Prometheus text) and the web viewer (``/``, ``/static``).

Each connection runs three tasks: a reader (validates messages, queues audio, stops reading
while its inbox is full), a sender (sends the session's frames in order) and a watcher of the
session's failure flag (set by the scheduler, e.g. for a too slow reader). Whatever goes wrong
with one client ends that session only: it gets ``{"type": "error", "message": ...}`` and a
close code, its pool row is freed, and the server and the other sessions go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..body.constants import FPS, PARENTS
from ..data.audio import SAMPLE_RATE
from ..engine import LiveGesture
from ..engine import PoolFullError
from ..errors import LiveGestureError
from ..model.config import FRAMES_PER_TOKEN
from .config import ServerConfig
from .metrics import CONTENT_TYPE_LATEST, ServerMetrics
from .protocol import EndMessage, ProtocolError, StartMessage, WordsMessage, decode_audio, parse_message
from .scheduler import LiveSession, Scheduler
from .security import AccessPolicy

__all__ = ["create_app"]

STATIC = Path(__file__).with_name("static")
log = logging.getLogger("livegesture.serve")


class ClientError(Exception):
    """Ends one session: `message` goes to its client, then the connection closes with `code`."""

    def __init__(self, message: str, code: int = 1008, kind: str | None = "protocol"):
        super().__init__(message)
        self.message, self.code, self.kind = message, code, kind


def create_app(engine: LiveGesture, config: ServerConfig | None = None, warmup: bool = True) -> FastAPI:
    """A FastAPI app serving `engine` to every session through one batched :class:`SessionPool`."""
    config = config or ServerConfig()
    metrics = ServerMetrics()
    access = AccessPolicy(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        sched = Scheduler(engine, config, metrics)
        await sched.start(warmup=warmup)
        app.state.scheduler = sched
        try:
            yield
        finally:
            await sched.stop()

    app = FastAPI(title="LiveGesture", lifespan=lifespan)
    app.state.config, app.state.metrics, app.state.engine, app.state.access = config, metrics, engine, access

    @app.get("/health")
    async def health() -> JSONResponse:
        sched: Scheduler = app.state.scheduler
        return JSONResponse({"status": "ok", "sessions": len(sched.sessions), "pool_sessions": len(sched.pool),
                             "capacity": config.max_sessions, "fps": FPS, "sample_rate": SAMPLE_RATE,
                             "words": engine.has_text, "token_required": access.token is not None,
                             "precision": engine.precision})

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        return access.metrics_refusal(request) or Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        refusal = access.handshake_refusal(websocket)
        if refusal is not None:
            metrics.error(refusal[0])
            return await access.refuse(websocket, refusal[1])
        await websocket.accept()
        sched: Scheduler = app.state.scheduler
        session: LiveSession | None = None
        client, claimed = access.client_of(websocket), False
        try:
            over = access.claim(client)
            if over is not None:
                raise ClientError(over, 1008, "client_limit")
            claimed = True
            start = await _receive_start(websocket, config)
            try:
                session = await sched.open(start)
            except PoolFullError as exc:
                raise ClientError(str(exc), 1013, "full") from None
            except LiveGestureError as exc:
                raise ClientError(str(exc)) from None
            await websocket.send_text(json.dumps({
                "type": "started", "session": session.sid, "fps": FPS, "sample_rate": start.sample_rate,
                "model_sample_rate": SAMPLE_RATE, "frames_per_token": FRAMES_PER_TOKEN, "format": start.format,
                "output": start.output, "joints": start.joints, "words": engine.has_text, "cleanup": start.cleanup,
                "parents": list(PARENTS)}))
            await _serve(websocket, sched, session, config, metrics)
        except ClientError as exc:
            if exc.kind is not None:
                metrics.error(exc.kind)
            await _close_with_error(websocket, exc.message, exc.code)
        except (WebSocketDisconnect, OSError):  # uvicorn raises ClientDisconnected (an OSError) on send
            metrics.disconnect()
        except Exception:  # a bug: this client gets a 1011, the server goes on
            log.exception("session failed")
            metrics.error("internal")
            await _close_with_error(websocket, "internal server error", 1011)
        finally:
            if claimed:
                access.release(client)
            if session is not None:
                session.fail("session closed")  # stops a handler still waiting for room
                await sched.release(session)

    return app


async def _receive(websocket: WebSocket, timeout: float, what: str) -> dict:
    try:
        msg = await asyncio.wait_for(websocket.receive(), timeout)
    except asyncio.TimeoutError:
        raise ClientError(f"no {what} within {timeout:g} s; session closed", 1008, "timeout") from None
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    return msg


def _parse_text(text: str, config: ServerConfig):
    """A client's text message within the size limit, parsed; :class:`ClientError` otherwise."""
    if len(text) > config.max_text_bytes:
        raise ClientError(f"text message of {len(text)} bytes exceeds the limit of {config.max_text_bytes}")
    try:
        return parse_message(text)
    except ProtocolError as exc:
        raise ClientError(str(exc)) from None


async def _receive_start(websocket: WebSocket, config: ServerConfig) -> StartMessage:
    msg = await _receive(websocket, config.start_timeout, "start message")
    text = msg.get("text")
    if text is None:
        raise ClientError('send {"type": "start", ...} as a text message before any audio')
    m = _parse_text(text, config)
    if not isinstance(m, StartMessage):
        raise ClientError(f'the first message must be {{"type": "start", ...}}, got a {m.type!r} message')
    return m


async def _serve(websocket: WebSocket, sched: Scheduler, s: LiveSession, config: ServerConfig,
                 metrics: ServerMetrics) -> None:
    reader = asyncio.create_task(_read_loop(websocket, sched, s, config))
    sender = asyncio.create_task(_send_loop(websocket, sched, s, config, metrics))
    failed = asyncio.create_task(s.failed.wait())
    expired = asyncio.create_task(asyncio.sleep(config.max_session_seconds or float("inf")))
    pending, done = {reader, sender, failed, expired}, set()
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if failed in done:
                raise ClientError(s.fail_reason, s.fail_code, kind=None)  # counted where it was set
            if expired in done:
                raise ClientError(f"the session reached the server's maximum session length of "
                                  f"{config.max_session_seconds:g} s; open a new one to go on", 1008, "session_length")
            if reader in done:
                reader.result()  # raises ClientError / WebSocketDisconnect; returns after "end"
            if sender in done:
                sender.result()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(1000), 2.0)
                return
    finally:
        tasks = (reader, sender, failed, expired)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # an exception leaving this frame keeps it in its traceback, and the frame's tasks keep
        # their own exceptions and tracebacks: drop them, or every failed session (its socket,
        # WebSocket and deflate state) waits in a reference cycle for a full garbage collection
        del reader, sender, failed, expired, tasks, pending, done


async def _read_loop(websocket: WebSocket, sched: Scheduler, s: LiveSession, config: ServerConfig) -> None:
    fmt = s.start.format
    while True:
        msg = await _receive(websocket, config.idle_timeout, "message")
        data, text = msg.get("bytes"), msg.get("text")
        if data is not None:
            if len(data) > config.max_packet_bytes:
                raise ClientError(f"audio message of {len(data)} bytes exceeds the limit of "
                                  f"{config.max_packet_bytes} bytes; send smaller packets (20-40 ms is typical)")
            try:
                audio = decode_audio(data, fmt)
            except ProtocolError as exc:
                raise ClientError(str(exc)) from None
            if len(audio):
                await sched.push_audio(s, audio)
            continue
        if text is None:
            continue
        m = _parse_text(text, config)
        if isinstance(m, StartMessage):
            raise ClientError("this session has already started; open a new connection for a new session")
        if isinstance(m, WordsMessage):
            if not sched.pool.has_text:
                # an optional cue: say so, keep the session (the motion does not need the words)
                s.out.put_nowait((json.dumps({"type": "error", "fatal": False, "message":
                                              "words are not supported by this model/server (it was trained "
                                              "without text); the words were ignored"}), None, False))
            else:
                sched.push_words(s, [w.model_dump() for w in m.words])
            continue
        if isinstance(m, EndMessage):
            sched.end(s)
            return


async def _send_loop(websocket: WebSocket, sched: Scheduler, s: LiveSession, config: ServerConfig,
                     metrics: ServerMetrics) -> None:
    while True:
        item = await s.out.get()
        if item is None:
            await websocket.send_text(json.dumps({"type": "ended", "frames": s.frames_out}))
            return
        payload, arrived, is_frame = item
        send = websocket.send_bytes(payload) if isinstance(payload, bytes) else websocket.send_text(payload)
        try:
            await asyncio.wait_for(send, config.send_timeout)
        except asyncio.TimeoutError:
            metrics.error("slow_client")
            raise ClientError(f"client reads too slowly: one send blocked more than {config.send_timeout:g} s; "
                              "session closed", 1008, kind=None) from None
        except Exception as exc:  # the client is gone
            # the error's traceback holds wait_for's frame, which holds the task that holds the
            # error: a cycle that would keep this frame (and the session's queued frames) alive
            # until a full garbage collection
            exc.__traceback__ = None
            raise WebSocketDisconnect(1006) from exc
        if is_frame:
            metrics.frame_sent(None if arrived is None else time.monotonic() - arrived)
        sched.frame_taken(s)


async def _close_with_error(websocket: WebSocket, message: str, code: int) -> None:
    """Best effort: the client may already be gone or not reading. A client that does not read
    cannot even take the close frame; then its connection is aborted, so that its buffers do not
    stay allocated for as long as it keeps the socket open."""
    if websocket.application_state == WebSocketState.DISCONNECTED or \
            websocket.client_state == WebSocketState.DISCONNECTED:
        return
    try:
        await asyncio.wait_for(websocket.send_text(json.dumps({"type": "error", "fatal": True,
                                                               "message": message})), 2.0)
        await asyncio.wait_for(websocket.close(code, message.encode()[:120].decode(errors="ignore")), 2.0)
    except asyncio.TimeoutError:
        _abort(websocket)
    except Exception:  # noqa: BLE001  (gone meanwhile)
        pass


def _abort(websocket: WebSocket) -> None:
    """Drop the TCP connection at once (RST). ASGI has no such call: this looks for the server's
    protocol object behind the ASGI send callable (uvicorn keeps its transport there; Starlette
    wraps the callable in closures) and does nothing when it is not found."""
    fn, seen = getattr(websocket, "_send", None), 0
    while fn is not None and seen < 8:
        seen += 1
        transport = getattr(getattr(fn, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            transport.abort()
            return
        cells = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if _filled(c)]
        fn = next((c for c in cells if callable(c) and (hasattr(c, "__self__") or hasattr(c, "__closure__"))), None)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True
