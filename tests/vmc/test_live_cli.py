"""`livegesture live --vmc` and `stream-file --vmc` with a loopback receiver (the TINY model of
tests/test_engine.py): every frame of the session reaches the receiver with every humanoid bone,
and the pose it describes is generate()'s."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from livegesture import LiveGestureError, Motion
from livegesture.body import forward_kinematics
from livegesture.cli import app
from livegesture.data import load_audio
from livegesture.vmc import HUMANOID_BONES

from ..test_engine import audio_of, model, model_path  # noqa: F401  (fixtures)
from .receiver import Receiver, world_joints_from_vmc


def _check_frames(frames: list, expected: Motion) -> None:
    assert len(frames) == len(expected)
    fk = forward_kinematics(expected)
    for t, msgs in enumerate(frames):
        names = [m.params[0] for m in msgs if m.address == "/VMC/Ext/Bone/Pos"]
        assert names == list(HUMANOID_BONES)
        assert sum(m.address == "/VMC/Ext/Root/Pos" for m in msgs) == 1
        np.testing.assert_allclose(world_joints_from_vmc(msgs, HUMANOID_BONES), fk[t], atol=5e-5)


@pytest.mark.parametrize("fast", [True, False])
def test_live_sends_every_frame_of_generate(model, model_path, tmp_path, fast):  # noqa: F811
    seconds = 2.0 if fast else 1.2
    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(seconds, seed=3), 16000)
    out = tmp_path / "sent.npz"
    with Receiver() as rx:
        t0 = time.monotonic()
        res = CliRunner().invoke(app, ["live", str(wav), "--vmc", rx.address, "--model", str(model_path),
                                       "-o", str(out), *(["--fast"] if fast else [])])
        wall = time.monotonic() - t0
        assert res.exit_code == 0, res.output
        expected = model.generate(load_audio(wav), seed=0)
        rx.wait_for(len(expected))
        frames = rx.frames()
    assert f"sent {len(expected)} frames" in res.output
    _check_frames(frames, expected)
    np.testing.assert_allclose(Motion.load(out).poses, expected.poses, atol=1e-5)
    if not fast:
        assert wall >= seconds * 0.95  # paced in real time


def test_live_bad_inputs_are_one_line_exit_2(model_path, tmp_path, monkeypatch):  # noqa: F811
    """An address nobody listens on (through the real entry point: one line, exit 2, before the
    model loads), a malformed address, an unwritable -o, a missing file, and --mic without PortAudio
    or without an input device (simulated: the machine may have either)."""
    import builtins
    import socket

    import livegesture.mic as mic

    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(0.5), 16000)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    proc = subprocess.run([sys.executable, "-m", "livegesture", "live", str(wav), "--vmc", f"127.0.0.1:{closed}",
                           "--model", str(tmp_path / "never-loaded.safetensors")],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "nothing receives VMC" in lines[0], proc.stderr
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with Receiver() as rx:
        for args, needle in (([str(wav), "--vmc", "127.0.0.1:99999"], "HOST:PORT"),
                             ([str(wav), "--vmc", rx.address, "-o", str(blocker / "m.npz")], "cannot write"),
                             ([str(tmp_path / "missing.wav"), "--vmc", rx.address], "no such speech file"),
                             ([str(wav), "--mic", "--vmc", rx.address], "SPEECH file or --mic")):
            res = CliRunner().invoke(app, ["live", *args, "--model", str(model_path)])
            assert isinstance(res.exception, LiveGestureError) and needle in str(res.exception), res.output
    real_import = builtins.__import__

    def no_portaudio(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **k)

    monkeypatch.setitem(sys.modules, "sounddevice", None)
    del sys.modules["sounddevice"]
    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    res = CliRunner().invoke(app, ["live", "--mic", "--vmc", "127.0.0.1:39539", "--model", str(model_path)])
    assert isinstance(res.exception, LiveGestureError) and "PortAudio library is missing" in str(res.exception)
    monkeypatch.setattr(builtins, "__import__", real_import)

    class NoDevice:
        @staticmethod
        def query_devices(device=None, kind=None):
            raise ValueError("No input device matching")

    monkeypatch.setattr(mic, "_sounddevice", lambda: NoDevice)
    res = CliRunner().invoke(app, ["live", "--mic", "--vmc", "127.0.0.1:39539", "--model", str(model_path)])
    assert isinstance(res.exception, LiveGestureError) and "no sound input device" in str(res.exception)


def test_stream_file_forwards_to_vmc(model, tmp_path):  # noqa: F811
    from livegesture.serve.config import ServerConfig
    from livegesture.serve.runner import ServerThread

    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(1.5, seed=4), 16000, subtype="PCM_16")
    with ServerThread(model, ServerConfig(max_sessions=2)) as srv, Receiver() as rx:
        res = CliRunner().invoke(app, ["stream-file", str(wav), "--url", srv.url, "--no-realtime",
                                       "-o", str(tmp_path / "m.npz"), "--vmc", rx.address])
        assert res.exit_code == 0, res.output
        got = Motion.load(tmp_path / "m.npz")
        rx.wait_for(len(got))
        frames = rx.frames()
    assert f"forwarded {len(got)} frames" in res.output
    _check_frames(frames, got)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # a socket left open
def test_client_forwards_to_an_address_and_closes_its_sender(model):  # noqa: F811
    import gc
    import warnings

    from livegesture.serve.client import stream_audio_sync
    from livegesture.serve.config import ServerConfig
    from livegesture.serve.runner import ServerThread

    with ServerThread(model, ServerConfig(max_sessions=2)) as srv, Receiver() as rx:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)   # an unclosed socket would warn here
            res = stream_audio_sync(srv.url, audio_of(1.0, seed=6), realtime=False, vmc=rx.address)
            gc.collect()
        rx.wait_for(len(res.motion))
        frames = rx.frames()
    _check_frames(frames, res.motion)


def test_live_compile_sends_the_frames_of_the_compiled_generate(model_path, tmp_path, monkeypatch):  # noqa: F811
    """`live --compile` streams through the compiled programs: bit for bit the frames that the compiled
    engine's generate() gives (the same programs on the same shapes)."""
    from livegesture.engine import LiveGesture
    from livegesture.engine.compiled import compile_available

    if compile_available() is not None:
        pytest.skip(compile_available())
    asked = []
    load = LiveGesture.load.__func__

    def spy(cls, *a, **k):
        asked.append(k.get("compile", False))
        return load(cls, *a, **k)

    monkeypatch.setattr(LiveGesture, "load", classmethod(spy))
    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(1.5, seed=4), 16000)
    out = tmp_path / "sent.npz"
    with Receiver() as rx:
        res = CliRunner().invoke(app, ["live", str(wav), "--vmc", rx.address, "--model", str(model_path),
                                       "--fast", "--compile", "-o", str(out)])
        assert res.exit_code == 0, res.output
    assert asked == [True]
    expected = LiveGesture.load(model_path, compile=True).generate(load_audio(wav), seed=0)
    sent = Motion.load(out)
    assert len(sent) == len(expected) > 0
    for k in ("poses", "trans", "expressions"):
        np.testing.assert_array_equal(getattr(sent, k), getattr(expected, k), err_msg=k)
