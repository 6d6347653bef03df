"""``livegesture serve --workers N``: N uvicorn worker processes on one port, each with its own pool,
and every client still gets exactly LiveGesture.generate's frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from typer.testing import CliRunner

from livegesture import LiveGestureError
from livegesture.cli import app
from livegesture.serve.bench import start_server, worker_pids
from livegesture.serve.client import stream_audio

from ..test_engine import audio_of, model, model_path  # noqa: F401  (fixtures)
from .conftest import pcm16_exact


def test_two_workers_on_one_port_serve_exact_frames(model, model_path):
    proc, url = start_server(model_path, max_sessions=6, threads=1, workers=2)  # room for all six on either worker: the kernel spreads connections unevenly
    try:
        pids = worker_pids(proc)
        assert len(pids) == 2 and proc.pid not in pids  # the supervisor and two worker processes
        audios = [pcm16_exact(audio_of(1.2 + 0.2 * i, seed=30 + i)) for i in range(6)]

        async def run():
            return await asyncio.gather(*(stream_audio(url, a, seed=i, packet_ms=40, realtime=False)
                                          for i, a in enumerate(audios)))

        for i, (a, r) in enumerate(zip(audios, asyncio.run(run()))):
            ref = model.generate(a, seed=i)
            assert len(r.motion) == len(ref) > 0
            np.testing.assert_array_equal(r.motion.poses, ref.poses)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_access_settings_reach_every_worker(model, model_path):
    """--token and --max-sessions-per-client travel to the worker processes: a client without the
    token is refused by whichever worker takes it, one with it gets generate's frames."""
    from livegesture.serve.client import ServerError

    proc, url = start_server(model_path, max_sessions=4, threads=1, workers=2,
                             extra=("--max-sessions-per-client", "3"), env={"LIVEGESTURE_TOKEN": "s3cret"})
    try:
        a = pcm16_exact(audio_of(1.0, seed=40))
        for _ in range(4):  # several connections, so that both workers are asked
            with pytest.raises(ServerError, match="403"):
                asyncio.run(stream_audio(url, a, seed=0, realtime=False))
        ref = model.generate(a, seed=1)

        async def run():
            return await asyncio.gather(*(stream_audio(url, a, seed=1, realtime=False, token="s3cret")
                                          for _ in range(2)))

        for r in asyncio.run(run()):
            np.testing.assert_array_equal(r.motion.poses, ref.poses)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_precision_reaches_every_worker(model_path):
    """--precision int8 travels to the worker processes: /health says so whichever worker answers, and a
    client gets what the int8 engine generates."""
    import httpx

    from livegesture import LiveGesture

    proc, url = start_server(model_path, max_sessions=2, threads=1, workers=2, extra=("--precision", "int8"))
    try:
        http = url.replace("ws://", "http://").rsplit("/ws", 1)[0]
        assert {httpx.get(http + "/health", timeout=10).json()["precision"] for _ in range(6)} == {"int8"}
        a = pcm16_exact(audio_of(1.0, seed=41))
        r = asyncio.run(stream_audio(url, a, seed=2, realtime=False))
        np.testing.assert_array_equal(r.motion.poses, LiveGesture.load(model_path, precision="int8")
                                      .generate(a, seed=2).poses)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_bad_worker_options_are_user_errors(model_path):
    for args in (["serve", "--workers", "0"], ["bench-server", "--workers", "1,x"]):
        res = CliRunner().invoke(app, [*args, "--model", str(model_path)])
        assert isinstance(res.exception, LiveGestureError) and "--workers" in str(res.exception)  # -> exit 2
