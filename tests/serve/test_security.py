"""A server that can face a network: the token, the Origin allow-list, the per-client session limit
and the maximum session length. Refused attempts never open a session; authenticated clients'
frames stay exactly those of LiveGesture.generate."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import numpy as np
import pytest
import websockets

from livegesture.serve.client import ServerError, stream_audio, stream_audio_sync
from livegesture.serve.config import ServerConfig
from livegesture.serve.runner import ServerThread
from livegesture.serve.security import RedactTokens, normalise_origin

from ..test_engine import assert_same_motion, audio_of
from .conftest import pcm16_exact

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def token_server(model):
    with ServerThread(model, ServerConfig(max_sessions=8, token=TOKEN)) as srv:
        yield srv


def _status_of(url: str, headers: dict | None = None) -> int | None:
    """HTTP status of a refused WebSocket upgrade (None when it opened)."""
    async def go():
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=10):
                return None
        except websockets.InvalidStatus as exc:
            return exc.response.status_code
    return asyncio.run(go())


def _errors(srv, kind: str) -> float:
    return srv.app.state.metrics.errors_total.labels(kind)._value.get()


def _sessions_total(srv) -> float:
    return srv.app.state.metrics.sessions_total._value.get()


def test_no_or_wrong_token_is_refused_with_403(token_server):
    srv = token_server
    before, opened = _errors(srv, "unauthorized"), _sessions_total(srv)
    assert _status_of(srv.url) == 403
    assert _status_of(srv.url, {"Authorization": "Bearer wrong"}) == 403
    assert _status_of(srv.url + "?token=wrong") == 403
    assert _status_of(srv.url, {"Authorization": f"Basic {TOKEN}"}) == 403  # only Bearer carries it
    with pytest.raises(ServerError, match="HTTP 403 \\(the token is missing or wrong"):
        stream_audio_sync(srv.url, audio_of(0.5), realtime=False)
    assert _errors(srv, "unauthorized") == before + 5
    assert _sessions_total(srv) == opened  # no session was opened for any of them


@pytest.mark.parametrize("how", ["header", "query"])
def test_authenticated_clients_get_generate_frames(token_server, model, how):
    a = audio_of(2.0, seed=31)
    if how == "header":
        r = stream_audio_sync(token_server.url, a, seed=4, realtime=False, fmt="f32", token=TOKEN)
    else:
        r = stream_audio_sync(token_server.url + f"?token={TOKEN}", a, seed=4, realtime=False, fmt="f32")
    ref = model.generate(a, seed=4)
    assert len(ref) > 50
    assert_same_motion(r.motion, ref, tol=1e-4)


def test_health_is_open_and_metrics_need_the_token(token_server):
    h = httpx.get(token_server.http + "/health")
    assert h.status_code == 200 and h.json()["token_required"] is True
    assert httpx.get(token_server.http + "/metrics").status_code == 403
    assert httpx.get(token_server.http + "/metrics", headers={"Authorization": "Bearer no"}).status_code == 403
    ok = httpx.get(token_server.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "livegesture_sessions_total" in ok.text
    assert httpx.get(token_server.http + f"/metrics?token={TOKEN}").status_code == 200
    assert httpx.get(token_server.http + "/").status_code == 200  # the viewer page asks for the token


def test_public_metrics(model):
    with ServerThread(model, ServerConfig(max_sessions=2, token=TOKEN, public_metrics=True), warmup=False) as srv:
        assert httpx.get(srv.http + "/metrics").status_code == 200
        assert _status_of(srv.url) == 403  # the WebSocket still needs the token


# ---------------------------------------------------------------------- Origin
def test_cross_origin_upgrades_are_refused_without_a_token(server, model):
    """The default: a browser page of another site cannot open a session (cross-site WebSocket
    hijacking); the server's own page and non-browser clients (no Origin header) can."""
    own = f"http://127.0.0.1:{server.port}"
    before = _errors(server, "origin")
    for evil in ("http://evil.example", "https://127.0.0.1.evil.example", "null", f"http://localhost:{server.port}",
                 f"http://127.0.0.1:{server.port + 1}"):
        assert _status_of(server.url, {"Origin": evil}) == 403, evil
    assert _errors(server, "origin") == before + 5
    assert _status_of(server.url, {"Origin": own}) is None
    assert _status_of(server.url, {"Origin": own.upper()}) is None  # scheme and host are case-insensitive
    a = pcm16_exact(audio_of(1.5, seed=32))
    r = stream_audio_sync(server.url, a, seed=1, realtime=False)  # no Origin header
    assert_same_motion(r.motion, model.generate(a, seed=1), tol=1e-4)


def test_allow_list_and_token(model):
    cfg = ServerConfig(max_sessions=4, allowed_origins=("https://app.example.org", "http://localhost:3000"))
    with ServerThread(model, cfg, warmup=False) as srv:
        assert _status_of(srv.url, {"Origin": "https://app.example.org"}) is None
        assert _status_of(srv.url, {"Origin": "https://app.example.org:443"}) is None  # default port
        assert _status_of(srv.url, {"Origin": "http://localhost:3000"}) is None
        assert _status_of(srv.url, {"Origin": "http://app.example.org"}) == 403  # other scheme
        assert _status_of(srv.url, {"Origin": f"http://127.0.0.1:{srv.port}"}) == 403  # a list replaces the default
    with ServerThread(model, ServerConfig(max_sessions=4, token=TOKEN), warmup=False) as srv:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert _status_of(srv.url, {"Origin": "https://elsewhere.example", **auth}) is None  # the token guards
        assert _status_of(srv.url, {"Origin": "https://elsewhere.example"}) == 403
    cfg = ServerConfig(max_sessions=4, token=TOKEN, allowed_origins=("https://app.example.org",))
    with ServerThread(model, cfg, warmup=False) as srv:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert _status_of(srv.url, {"Origin": "https://elsewhere.example", **auth}) == 403  # both apply
        assert _status_of(srv.url, {"Origin": "https://app.example.org", **auth}) is None


def test_normalise_origin():
    assert normalise_origin("HTTPS://App.Example.org:443") == "https://app.example.org"
    assert normalise_origin("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert normalise_origin("http://[::1]:80") == "http://[::1]"
    assert normalise_origin("null") == "" and normalise_origin("http://x:99999") == ""


# ---------------------------------------------------------------------- limits
def test_sessions_per_client_are_limited(model):
    async def go(url):
        async def opened():
            ws = await websockets.connect(url)
            try:
                await ws.send(json.dumps({"type": "start"}))
            except websockets.ConnectionClosed:
                pass  # refused at once: the server's error message is still to be read
            return ws, json.loads(await ws.recv())
        first, second, third = [await opened() for _ in range(3)]
        assert first[1]["type"] == second[1]["type"] == "started"
        assert third[1]["type"] == "error" and "limit per client is 2" in third[1]["message"]
        await third[0].wait_closed()
        assert third[0].close_code == 1008
        await first[0].close()
        await asyncio.sleep(0.3)
        fourth = await opened()  # a freed share can be used again
        assert fourth[1]["type"] == "started"
        for ws, _ in (second, fourth):
            await ws.close()

    with ServerThread(model, ServerConfig(max_sessions=8, max_sessions_per_client=2), warmup=False) as srv:
        asyncio.run(go(srv.url))
        assert _errors(srv, "client_limit") == 1
        deadline = time.monotonic() + 10  # the server may still be closing the last two
        while srv.app.state.access.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.app.state.access.sessions == {}  # every share given back


def test_sessions_end_at_the_maximum_length(model):
    cfg = ServerConfig(max_sessions=4, max_session_seconds=1.0)
    with ServerThread(model, cfg, warmup=False) as srv:
        with pytest.raises(ServerError, match="maximum session length of 1 s"):
            stream_audio_sync(srv.url, audio_of(4.0), realtime=True)  # 4 s paced in real time
        short = audio_of(0.5)
        assert len(stream_audio_sync(srv.url, short, realtime=False).motion) == len(model.generate(short))
        assert _errors(srv, "session_length") == 1


def test_limits_leave_real_clients_exact(model):
    """Refused and expired sessions beside real ones: the real clients' frames are unchanged."""
    cfg = ServerConfig(max_sessions=8, token=TOKEN, max_sessions_per_client=3)
    audios = [pcm16_exact(audio_of(2.0, seed=40 + i)) for i in range(2)]

    async def go(url):
        real = [stream_audio(url, a, seed=i, realtime=False, token=TOKEN) for i, a in enumerate(audios)]
        hostile = [stream_audio(url, audios[0], realtime=False) for _ in range(4)]  # no token
        hostile += [stream_audio(url, audios[0], realtime=False, token="nope") for _ in range(2)]
        return await asyncio.gather(*real, *hostile, return_exceptions=True)

    with ServerThread(model, cfg, warmup=False) as srv:
        out = asyncio.run(go(srv.url))
    for i, (a, r) in enumerate(zip(audios, out[:2])):
        assert not isinstance(r, BaseException), r
        assert_same_motion(r.motion, model.generate(a, seed=i), tol=1e-4)
    assert all(isinstance(e, ServerError) and "403" in str(e) for e in out[2:])


# ---------------------------------------------------------------------- logs
def test_tokens_are_redacted_from_logs():
    rec = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" %s',
                            ("127.0.0.1:5", f"/ws?token={TOKEN}&x=1", "403"), None)
    RedactTokens().filter(rec)
    assert TOKEN not in rec.getMessage() and "token=<redacted>&x=1" in rec.getMessage()
