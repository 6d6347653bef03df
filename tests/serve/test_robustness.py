"""Hostile clients interleaved with real ones: each hostile session gets a clear error and is
closed, the real clients' frames stay exactly those of LiveGesture.generate, and every session,
task and byte of Python memory the hostile sessions used is released."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import tracemalloc

import numpy as np
import pytest
import websockets

from livegesture.serve.config import ServerConfig
from livegesture.serve.client import stream_audio
from livegesture.serve.runner import ServerThread
from livegesture.serve.scheduler import LiveSession

from ..test_engine import assert_same_motion, audio_of
from .conftest import pcm16_exact

CFG = ServerConfig(max_sessions=64, max_packet_bytes=32_000, max_output_frames=8, slow_client_timeout=1.0,
                   send_timeout=2.0, start_timeout=2.0, idle_timeout=5.0, max_queued_seconds=2.0)


@pytest.fixture(scope="module")
def hserver(model):
    with ServerThread(model, CFG) as srv:
        yield srv


START = json.dumps({"type": "start"})


async def _error_of(url, *messages, read_first=False) -> tuple[str | None, int | None]:
    """Send `messages` (str: text, bytes: binary) and return (the error message, the close code)."""
    async with websockets.connect(url) as ws:
        err = None
        try:
            for m in messages:
                await ws.send(m)
            async for msg in ws:
                if isinstance(msg, str):
                    d = json.loads(msg)
                    if d["type"] == "error":
                        err = d["message"]
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        return err, ws.close_code


CASES = {
    "garbage text": (("{not json",), "must be JSON"),
    "json without type": (('{"seed": 1}',), '"type"'),
    "unknown type": (('{"type": "dance"}',), "bad 'dance' message"),
    "binary before start": ((b"\x00\x01" * 100,), "before any audio"),
    "end before start": (('{"type": "end"}',), "first message must be"),
    "wrong sample rate": (('{"type": "start", "sample_rate": 12345}',), "unsupported sample_rate 12345"),
    "bad field": (('{"type": "start", "format": "mp3"}',), "format"),
    "extra field": (('{"type": "start", "speed": 2}',), "speed"),
    "odd pcm16 bytes": ((START, b"\x00" * 641), "not a whole number of pcm16 samples"),
    "nan f32": (('{"type": "start", "format": "f32"}', np.array([0, np.nan], "<f4").tobytes()), "NaN"),
    "inf f32": (('{"type": "start", "format": "f32"}', np.array([np.inf] * 4, "<f4").tobytes()), "NaN or Inf"),
    "int16 sent as f32": (('{"type": "start", "format": "f32"}', np.full(8, 3e4, "<f4").tobytes()), "[-1, 1]"),
    "oversize packet": ((START, b"\x00" * 40_000), "exceeds the limit of 32000 bytes"),
    "second start": ((START, START), "already started"),
    "bad words": ((START, '{"type": "words", "words": [{"word": "a", "start": 2, "end": 1}]}'), "ends before"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_hostile_message_gets_a_clear_error_and_a_close(hserver, name):
    messages, expected = CASES[name]
    err, code = asyncio.run(_error_of(hserver.url, *messages))
    assert err is not None and expected in err, err
    assert code == 1008


def test_huge_frames_are_refused_by_the_websocket_layer(hserver):
    async def go():
        async with websockets.connect(hserver.url, max_size=None) as ws:
            await ws.send(START)
            await ws.recv()
            with pytest.raises(websockets.ConnectionClosed):
                await ws.send(b"\x00" * 1_000_000)
                await ws.recv()
                await ws.recv()
            return ws.close_code
    assert asyncio.run(go()) in (1008, 1009)


def test_start_timeout(hserver):
    err, code = asyncio.run(_error_of(hserver.url))  # sends nothing
    assert "no start message within 2 s" in err and code == 1008


# ---------------------------------------------------------------------- interleaved hostile + real
async def _disconnect_mid_stream(url, abort: bool) -> None:
    ws = await websockets.connect(url)
    await ws.send(START)
    await ws.recv()
    a = (audio_of(1.0, seed=3) * 3e4).astype("<i2").tobytes()
    for i in range(0, len(a), 640):
        await ws.send(a[i:i + 640])
    if abort:
        ws.transport.abort()  # no close handshake: like a crashed client
    else:
        await ws.close()


def _slow_errors(srv) -> float:
    return srv.app.state.metrics.errors_total.labels("slow_client")._value.get()


async def _slow_reader(srv) -> None:
    """Asks for big frames, pushes audio much faster than real time and never reads, until the
    server has ended its session as a too slow reader (a client that does not read cannot see the
    close frame, so the server's own count is checked)."""
    url = srv.url
    before = _slow_errors(srv)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    async with websockets.connect(url, sock=sock, max_queue=1) as ws:
        await ws.send(json.dumps({"type": "start", "output": "json", "joints": True}))
        a = (audio_of(30.0, seed=4) * 3e4).astype("<i2").tobytes()
        try:
            for i in range(0, len(a), 16000):
                await asyncio.wait_for(ws.send(a[i:i + 16000]), 5)
        except (websockets.ConnectionClosed, asyncio.TimeoutError):
            pass  # the server stopped reading us (back-pressure) or closed
        for _ in range(600):
            if _slow_errors(srv) > before:
                break
            await asyncio.sleep(0.05)
        assert _slow_errors(srv) > before, "the server never ended the slow reader's session"
        # and the server dropped the connection (a client that does not read cannot take a close frame)
        me = sock.getsockname()[1]
        for _ in range(200):
            if not _server_side_open(srv.port, me):
                break
            await asyncio.sleep(0.05)
        assert not _server_side_open(srv.port, me), "the server kept the slow reader's connection open"
        ws.transport.abort()


def _server_side_open(server_port: int, client_port: int) -> bool:
    """Whether the server's end of the connection from `client_port` is still established (Linux)."""
    if not os.path.exists("/proc/net/tcp"):
        return False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.read().splitlines()[1:]:
                p = line.split()
                if (int(p[1].split(":")[1], 16), int(p[2].split(":")[1], 16), p[3]) == (server_port, client_port, "01"):
                    return True
    return False


async def _idle_then_vanish(url) -> None:
    ws = await websockets.connect(url)
    ws.transport.abort()


def _hostile(url, i: int):
    kind = i % 6
    if kind == 0:
        name = list(CASES)[(i // 6) % len(CASES)]
        return _error_of(url, *CASES[name][0])
    if kind == 1:
        return _disconnect_mid_stream(url, abort=True)
    if kind == 2:
        return _disconnect_mid_stream(url, abort=False)
    if kind == 3:
        return _error_of(url, '{"type": "start", "format": "f32"}', np.full(320, np.nan, "<f4").tobytes())
    if kind == 4:
        return _idle_then_vanish(url)
    return _error_of(url, START, b"\x01" * 33)


async def _round(srv, n_hostile: int, real):
    url = srv.url
    tasks = [stream_audio(url, a, seed=s, packet_ms=20, realtime=False, output=o) for a, s, o in real]
    tasks += [_hostile(url, i) for i in range(n_hostile)]
    tasks.append(_slow_reader(srv))
    out = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [o for o in out if isinstance(o, BaseException)]
    assert not errors, errors
    return out[:len(real)]


def _wait_idle(srv, timeout=30.0) -> None:
    import time

    sched = srv.app.state.scheduler
    t = time.monotonic() + timeout
    while (sched.sessions or len(sched.pool)) and time.monotonic() < t:
        time.sleep(0.05)
    assert not sched.sessions and len(sched.pool) == 0, (sched.sessions, sched.pool.sessions)


# the test process also runs the clients: their results and the test's own objects are not the server's
CLIENT_SIDE = [tracemalloc.Filter(False, "*/serve/client.py"), tracemalloc.Filter(False, "*/tests/*"),
               tracemalloc.Filter(False, tracemalloc.__file__)]


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def test_fifty_hostile_connections_do_not_disturb_real_clients_or_leak(hserver, model):
    real = [(pcm16_exact(audio_of(3.0, seed=21)), 3, "binary"), (pcm16_exact(audio_of(2.0, seed=22)), 9, "json")]
    refs = [model.generate(a, seed=s) for a, s, _ in real]
    sched = hserver.app.state.scheduler

    def server_loop_tasks() -> int:
        # the scheduler's timed wait (asyncio.wait_for on Event.wait: a task of its own in Python 3.11)
        # comes and goes with every tick, so counting it made the comparison depend on timing
        return len([t for t in asyncio.all_tasks(sched._task.get_loop())
                    if getattr(t.get_coro(), "__qualname__", "") != "Event.wait"])

    asyncio.run(_round(hserver, 50, real))  # first round: warms caches, allocators, imports
    _wait_idle(hserver)
    gc.collect()
    tracemalloc.start()
    base_tasks, base_rss = server_loop_tasks(), _rss_kb()
    snap0 = tracemalloc.take_snapshot().filter_traces(CLIENT_SIDE)
    for _ in range(2):
        got = asyncio.run(_round(hserver, 50, real))
        for r, ref in zip(got, refs):  # unchanged by the hostile sessions beside them
            assert_same_motion(r.motion, ref, tol=1e-4)
    _wait_idle(hserver)
    gc.collect()
    diff = tracemalloc.take_snapshot().filter_traces(CLIENT_SIDE).compare_to(snap0, "filename")
    grown = sum(st.size_diff for st in diff)
    tracemalloc.stop()
    print(f"server-side python memory growth after 100 more hostile sessions: {grown / 1024:.1f} KiB; "
          f"RSS {base_rss} -> {_rss_kb()} KiB")
    import time

    # connections of the last round may still be finishing their close handshake: a leaked task
    # stays, a closing one ends within the timeout (the instant count failed now and then)
    deadline = time.monotonic() + 10.0
    while server_loop_tasks() > base_tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_loop_tasks() <= base_tasks  # (a connection of round 1 may still have been closing)
    assert not [o for o in gc.get_objects() if type(o) is LiveSession]
    # a leaked hostile session keeps its LiveSession, queues, arrival log and frames (> 2 KiB):
    # 100 of them (> 200 KiB) could not fit in this bound. What does grow (measured 125-132 KiB
    # after these two rounds, 185 KiB after six): the model's bounded cache of 16 flat state views
    # and small numpy/torch blocks of the decode (allocator caches; a SessionPool alone keeps the
    # same object counts over rounds)
    assert grown < 192 * 1024, diff[:10]
    metrics = hserver.app.state.metrics.render().decode()
    assert 'livegesture_errors_total{kind="slow_client"}' in metrics
    assert "livegesture_sessions_active 0.0" in metrics
