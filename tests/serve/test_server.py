"""A real server on loopback: concurrent clients get exactly LiveGesture.generate's frames."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from livegesture.cli import app
from livegesture.data.audio import load_audio
from livegesture.engine import token_audio_time
from livegesture.motion import Motion
from livegesture.serve.client import stream_audio, stream_audio_sync

from ..test_engine import assert_same_motion, audio_of
from ..test_engine_words import text_model, text_model_path  # noqa: F401  (fixtures)
from .conftest import pcm16_exact


async def _many(url, jobs):
    return await asyncio.gather(*(stream_audio(url, a, **kw) for a, kw in jobs))


def test_concurrent_clients_with_different_packets_get_generate_frames(server, model):
    audios = [pcm16_exact(audio_of(2.5 + 0.5 * i, seed=10 + i)) for i in range(4)]
    kws = [dict(seed=0, packet_ms=20, fmt="pcm16", output="binary"),
           dict(seed=7, packet_ms=37, fmt="f32", output="json"),
           dict(seed=7, packet_ms=250, fmt="pcm16", output="json", joints=True),
           dict(seed=1, packet_ms=1.5, fmt="f32", output="binary")]
    results = asyncio.run(_many(server.url, [(a, dict(realtime=False, **kw)) for a, kw in zip(audios, kws)]))
    for a, kw, r in zip(audios, kws, results):
        ref = model.generate(a, seed=kw["seed"])
        assert len(ref) == 4 * (len(r.motion) // 4) > 60
        assert_same_motion(r.motion, ref, tol=1e-4)
        assert r.ended == {"type": "ended", "frames": len(ref)}
        np.testing.assert_array_equal(r.indices, np.arange(len(ref)))
        np.testing.assert_allclose(r.audio_times, [token_audio_time(i) for i in range(len(ref))])
        assert r.started["parents"][0] == -1 and len(r.started["parents"]) == 55
    np.testing.assert_allclose(results[2].joints, model.generate(audios[2], seed=7).joints(), atol=1e-4)


def test_real_time_client_gets_frames_as_they_become_final(server, model):
    a = pcm16_exact(audio_of(2.0, seed=3))
    r = stream_audio_sync(server.url, a, seed=5, packet_ms=20, realtime=True)
    assert_same_motion(r.motion, model.generate(a, seed=5), tol=1e-4)
    assert r.wall_seconds >= 1.9  # paced in real time
    # each frame arrives soon after the packet that completed its audio (the tiny model is fast);
    # a server that waited for the end of the stream would show ~seconds here
    assert np.median(r.latencies) < 0.5


def test_health_and_metrics(server):
    h = httpx.get(server.http + "/health").json()
    assert h["status"] == "ok" and h["capacity"] == 16 and h["precision"] == "float32"
    stream_audio_sync(server.url, audio_of(1.0), realtime=False)
    text = httpx.get(server.http + "/metrics").text
    for name in ("livegesture_sessions_active", "livegesture_sessions_total", "livegesture_frames_sent_total",
                 "livegesture_frame_latency_seconds_bucket", "livegesture_errors_total",
                 "livegesture_model_steps_total"):
        assert name in text
    sent = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("livegesture_frames_sent_total")]
    assert sent and sent[0] >= 28


def test_stream_file_cli_on_held_out_speech_equals_generate(server, model, beat2_dir, tmp_path):
    """2_scott_0_4_4 is the held-out BEAT2 clip (audio only). Streamed fast (--no-realtime) to keep the
    test short; the frames do not depend on the pacing."""
    wav = beat2_dir / "2_scott_0_4_4.wav"
    out = tmp_path / "streamed.npz"
    res = CliRunner().invoke(app, ["stream-file", str(wav), "--url", server.url, "-o", str(out), "--seed", "4",
                                   "--no-realtime"])
    assert res.exit_code == 0, res.output
    assert "latency p50" in res.output
    got = Motion.load(out)
    ref = model.generate(load_audio(wav, 16000), seed=4)
    assert len(ref) > 1900
    assert_same_motion(got, ref, tol=1e-4)


def test_stream_file_cli_real_time_on_a_wav(server, model, tmp_path):
    import soundfile as sf

    wav, out = tmp_path / "speech.wav", tmp_path / "out" / "m.npz"
    sf.write(wav, audio_of(1.5, seed=8), 16000, subtype="PCM_16")
    res = CliRunner().invoke(app, ["stream-file", str(wav), "--url", f"http://127.0.0.1:{server.port}/",
                                   "-o", str(out)])  # the address the server prints works too
    assert res.exit_code == 0, res.output
    got = Motion.load(out)
    assert_same_motion(got, model.generate(load_audio(wav, 16000), seed=0), tol=1e-4)


def test_stream_file_without_out_writes_nothing(server, tmp_path):
    """Inside a flat BEAT2 folder a SPEECH.npz beside SPEECH.wav would become a ground-truth clip."""
    import soundfile as sf

    wav = tmp_path / "2_scott_0_9_9.wav"
    sf.write(wav, audio_of(1.0, seed=9), 16000, subtype="PCM_16")
    res = CliRunner().invoke(app, ["stream-file", str(wav), "--url", server.url, "--no-realtime"])
    assert res.exit_code == 0, res.output
    assert "nothing saved" in res.output and "latency p50" in res.output
    assert [p.name for p in tmp_path.iterdir()] == [wav.name]


def test_stream_file_f32_equals_generate_and_pcm16_rounds(server, model, tmp_path, cli):
    """On float audio (not on the 16-bit grid) pcm16 rounds every sample, so the server's model sees
    other samples than 'generate' on the file (a sampled token can flip, and the motion differs from
    there on); --format f32 sends the samples as they are and gives generate's frames."""
    import soundfile as sf

    wav = tmp_path / "speech.wav"
    sf.write(wav, audio_of(3.0, seed=12), 16000, subtype="FLOAT")
    audio = load_audio(wav, 16000)
    assert np.abs(pcm16_exact(audio) - audio).max() > 1e-6  # what pcm16 changes
    ref = model.generate(audio, seed=2)
    got = {}
    for fmt in ("f32", "pcm16"):
        out = tmp_path / f"{fmt}.npz"
        code, text, err = cli("stream-file", wav, "--url", server.url, "-o", out, "--seed", 2, "--format", fmt,
                              "--no-realtime")
        assert code == 0, err
        got[fmt] = Motion.load(out)
    assert_same_motion(got["f32"], ref, tol=1e-4)
    assert_same_motion(got["pcm16"], model.generate(pcm16_exact(audio), seed=2), tol=1e-4)


def test_stream_file_user_mistakes_are_one_line(server, tmp_path, cli):
    import socket

    import soundfile as sf

    from livegesture.engine import token_end_sample

    wav, short = tmp_path / "speech.wav", tmp_path / "short.wav"
    sf.write(wav, audio_of(1.0, seed=9), 16000, subtype="PCM_16")
    sf.write(short, audio_of(1.0, seed=9)[: token_end_sample(0) - 1], 16000, subtype="PCM_16")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    (tmp_path / "a_file").write_text("x")
    cases = {
        (wav, "--url", f"ws://127.0.0.1:{free}/ws"): "connection refused; is 'livegesture serve' running",
        (wav, "--url", f"http://127.0.0.1:{free}/"): "connection refused",
        (wav, "--url", "ftp://127.0.0.1/"): "expected ws://",
        (short, "--url", server.url): "shorter than one motion token",
        (wav, "--url", server.url, "-o", tmp_path / "a_file" / "m.npz"): "is a file, not a folder",
        (wav, "--url", server.url, "--format", "mp3"): "--format must be pcm16 or f32",
        (wav, "--url", server.url.replace("/ws", "/nope")): "HTTP 403 (",
    }
    for args, words in cases.items():
        code, _, err = cli("stream-file", *args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and words in lines[0], (args, err)


def test_resampled_session_equals_generate_at_its_rate(server, model):
    from livegesture.data.audio import prepare_audio

    a = pcm16_exact(prepare_audio(audio_of(2.0, seed=6), 16000, target_rate=48000))
    r = stream_audio_sync(server.url, a, sample_rate=48000, seed=2, realtime=False)
    assert_same_motion(r.motion, model.generate(a, sample_rate=48000, seed=2), tol=1e-4)


def test_words_to_a_model_without_text_warn_and_keep_the_session(server, model):
    a = audio_of(1.0)
    r = stream_audio_sync(server.url, a, realtime=False, fmt="f32", words=[{"word": "hi", "start": 0, "end": .3}])
    assert any("words are not supported" in w for w in r.warnings)
    assert_same_motion(r.motion, model.generate(a), tol=1e-4)


def test_bench_server_cli_against_a_running_server(server):
    res = CliRunner().invoke(app, ["bench-server", "--url", server.url, "-n", "2", "--seconds", "1.0"])
    assert res.exit_code == 0, res.output
    assert "N=  2" in res.output and "p95" in res.output and "dropped 0" in res.output


def test_bench_search_finds_the_largest_real_time_n():
    from livegesture.serve.bench import Trial, search

    import livegesture.serve.bench as bench

    calls = []

    def fake(url, audio, n, packet_ms=20.0, bound=0.3):  # pretend N <= 5 is real time
        calls.append(n)
        return Trial(n, 4 * n, 4 * n, 0, 0.01, 0.1 if n <= 5 else 0.5, 0.5, 0, 0.5)

    orig = bench.run_trial
    bench.run_trial = fake
    try:
        best, trials = search("ws://x", np.zeros(16000, np.float32), 64, report=lambda s: None)
    finally:
        bench.run_trial = orig
    assert best == 5 and calls == [1, 2, 4, 8, 6, 5]


def test_words_reach_a_text_model(text_model):
    from ..test_engine_words import WORDS
    from livegesture.data import Word
    from livegesture.serve.runner import ServerThread

    words = [{"word": w.text, "start": w.start, "end": w.end} if isinstance(w, Word) else
             w if isinstance(w, dict) else {"word": w[2], "start": w[0], "end": w[1]} for w in WORDS]
    a = pcm16_exact(audio_of(3.0))
    with ServerThread(text_model) as srv:
        r = stream_audio_sync(srv.url, a, seed=2, realtime=False, words=words)
    assert not r.warnings and r.started["words"] is True
    assert_same_motion(r.motion, text_model.generate(a, seed=2, words=WORDS), tol=1e-4)
    assert np.abs(r.motion.poses - text_model.generate(a, seed=2).poses).max() > 1e-4  # the words mattered


def test_smoothed_session_equals_generate_with_smoothing(server, model):
    from livegesture.smoothing import SmoothingConfig

    a = pcm16_exact(audio_of(2.5, seed=21))
    raw, smooth = asyncio.run(_many(server.url, [(a, dict(seed=3, packet_ms=37, realtime=False)),
                                                 (a, dict(seed=3, packet_ms=20, realtime=False, smooth=0.08))]))
    assert_same_motion(raw.motion, model.generate(a, seed=3), tol=1e-4)
    assert_same_motion(smooth.motion, model.generate(a, seed=3, smoothing=SmoothingConfig(0.08)), tol=1e-4)
    assert np.abs(raw.motion.poses - smooth.motion.poses).max() > 1e-3


def test_serve_on_a_busy_port_is_one_line_before_the_banner(cli, model_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, out, err = cli("serve", "--port", busy.getsockname()[1], "--model", model_path)
    assert code == 2 and out == "", out  # no "server on ..." banner
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Address already in use" in lines[0] and "--port" in lines[0], err
    code, out, err = cli("serve", "--host", "no-such-host.invalid", "--model", model_path)
    assert code == 2 and out == "" and "--host no-such-host.invalid" in err


def test_start_message_cleanup_root_and_seed_pose(server, model):
    from livegesture.cleanup import CleanupConfig, RootConfig
    from livegesture.serve.client import ServerError

    a = pcm16_exact(audio_of(2.0, seed=21))
    raw = stream_audio_sync(server.url, a, seed=2, realtime=False, cleanup=False)
    assert_same_motion(raw.motion, model.generate(a, seed=2, cleanup=CleanupConfig.off()), tol=1e-4)
    assert raw.started["cleanup"] is False
    placed = stream_audio_sync(server.url, a, seed=2, realtime=False, root="in_place")
    ref = model.generate(a, seed=2, cleanup=replace(model.cleanup, root=RootConfig(mode="in_place")))
    assert_same_motion(placed.motion, ref, tol=1e-4)
    np.testing.assert_array_equal(placed.motion.trans[:, [0, 2]], 0.0)
    pose = Motion(np.zeros((1, 55, 3), np.float32), np.array([[0.5, 1.3, -0.2]], np.float32),
                  np.zeros((1, 100), np.float32))
    seeded = stream_audio_sync(server.url, a, seed=2, realtime=False, seed_motion=pose)
    assert_same_motion(seeded.motion, model.generate(a, seed=2, seed_motion=pose), tol=1e-4)
    np.testing.assert_array_equal(seeded.indices, np.arange(len(seeded.motion)))  # own indices from 0
    np.testing.assert_allclose(seeded.audio_times, [token_audio_time(i) for i in range(len(seeded.motion))])
    np.testing.assert_allclose(seeded.motion.trans[0, [0, 2]], [0.5, -0.2], atol=0.05)
    with pytest.raises(ServerError, match="seed_trans"):
        asyncio.run(_bad_start(server.url, {"seed_poses": [[0.0] * 165]}))
    with pytest.raises(ServerError, match="root"):
        asyncio.run(_bad_start(server.url, {"root": "glued"}))


async def _bad_start(url, fields):
    import websockets

    from livegesture.serve.client import ServerError

    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "start", **fields}))
        reply = json.loads(await ws.recv())
        raise ServerError(reply.get("message", str(reply)))
