"""`livegesture bench` and its module: queue simulation, window sums, latency bookkeeping, CLI.

Timing figures are not asserted (they depend on the machine); what is asserted is the
bookkeeping that turns measured times into figures, using a fake clock where exact values
are known, and that the command runs end to end on a tiny model file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from livegesture.bench import bench_parallel, bench_step, bench_stream, per_window, random_bundle, simulate_queue
from livegesture.cli import app
from livegesture.data import synthetic_audio
from livegesture.engine import LiveGesture

from .train.test_ar_stage import TINY


@pytest.fixture(scope="module")
def engine() -> LiveGesture:
    return LiveGesture(random_bundle("demo", overrides=TINY))


@pytest.fixture(scope="module")
def model_file(engine, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "tiny.safetensors"
    engine.bundle.save(path)
    return path


def test_queue_and_windows():
    assert simulate_queue([0.02, 0.04, 0.06], [0.01, 0.05, 0.001]).tolist() == pytest.approx([0.03, 0.09, 0.091])
    assert per_window([1, 2, 3, 4, 5, 6, 7], 3) == [6, 15]  # the incomplete last window is dropped


def test_stream_latency_with_a_fake_clock(engine):
    """Every push 'takes' 5 ms: compute per 200 ms is exactly 50 ms, and the first frame of token tau is
    emitted 5 ms after the 20 ms packet that completes its audio (ceil((4 tau + 4) * 1600 / 3) samples)."""
    ticks = iter(range(10 ** 6))
    audio = synthetic_audio(3.0, seed=1)[0].astype(np.float32)
    res = bench_stream(engine, audio, clock=lambda: next(ticks) * 0.005)  # t1 - t0 = one tick
    assert res.packets == 150 and res.frames == 88  # floor(3 s * 30 / 4) tokens of 4 frames
    assert res.compute_p50 == pytest.approx(50.0) and res.compute_p99 == pytest.approx(50.0)
    assert res.rtf == pytest.approx(0.25)
    lat = []
    for t in range(res.frames):
        need = math.ceil((4 * (t // 4) + 4) * 1600 / 3)
        lat.append(1e3 * (math.ceil(need / 320) * 0.02 + 0.005 - t / 30))
    assert res.first_frame_latency == pytest.approx(lat[0])
    assert res.latency_p50 == pytest.approx(np.percentile(lat, 50))
    assert res.latency_p95 == pytest.approx(np.percentile(lat, 95))
    assert min(lat) >= 1e3 / 30  # zero look-ahead: never before the end of the frame's token
    # the floor: the same frames at their packets' arrival, i.e. 5 ms earlier each; for 20 ms packets
    # the token of phase 1 (ending 6.7 ms after a packet boundary) gives 146.7 ms to its first frame
    assert res.latency_floor_p95 == pytest.approx(np.percentile(lat, 95) - 5.0)
    assert res.latency_floor_p95 == pytest.approx(1e3 * (0.28 - 4 / 30))
    assert res.state_bytes > 0 and res.peak_rss > 0 and res.rss_after > 0


def test_real_clock_figures_are_consistent(engine):
    audio = synthetic_audio(2.0, seed=2)[0].astype(np.float32)
    res = bench_stream(engine, audio)
    assert res.compute_p50 <= res.compute_p95 <= res.compute_p99 <= res.compute_max
    assert res.latency_p50 <= res.latency_p95 <= res.latency_max
    assert res.first_frame_latency > 1e3 * 4 / 30  # a token's first frame waits for the whole token
    step = bench_step(engine.bundle.model, iters=3)
    assert step.cached_ms > 0 and step.recompute_ms > 0
    par = bench_parallel(engine, audio, [1, 3], stop_early=False)
    assert [p.sessions for p in par] == [1, 3] and all(p.compute_p50 > 0 for p in par)


def test_paced_stream_runs_in_wall_clock_time(engine):
    import time

    audio = synthetic_audio(1.6, seed=4)[0].astype(np.float32)
    t0 = time.perf_counter()
    res = bench_stream(engine, audio, warmup_s=0.0, pace=True)
    assert time.perf_counter() - t0 >= 1.6 - 0.02  # it slept until each packet's audio existed
    assert res.paced and res.frames == 48
    assert res.first_frame_latency >= 1e3 * 4 / 30  # emitted after its token's audio was spoken


def test_cli_bench(model_file, tmp_path):
    out = tmp_path / "b.json"
    res = CliRunner().invoke(app, ["bench", "--model", str(model_file), "--seconds", "2", "--parallel-seconds", "2",
                                   "--sessions", "1,2", "--step-iters", "2", "--threads", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    for text in ("compute per 200 ms of audio: p50", "real-time factor", "audio-to-frame latency: p50",
                 "peak RSS", "speed-up", "sessions in real time"):
        assert text in res.output
    d = json.loads(out.read_text())
    assert d["stream"]["frames"] == 60 and d["step"]["speedup"] > 0 and len(d["parallel"]) >= 1
    # the memory floor, measured in the same run: bytes / bandwidth, and the step's ratio to it
    st = d["step"]
    assert st["read_bytes"] > 0 and st["bandwidth_gbs"] > 0 and "memory floor" in res.output
    assert st["floor_ms"] == pytest.approx(1e3 * st["read_bytes"] / (1e9 * st["bandwidth_gbs"]))
    assert st["floor_ratio"] == pytest.approx(st["cached_ms"] / st["floor_ms"])
    assert st["run_ms"] > 0 and st["run_floor_ratio"] == pytest.approx(st["run_ms"] / st["floor_ms"])
    assert "in a run of steps" in res.output
    assert d["precision"] == "float32" and "float32," in res.output


def test_cli_bench_int8_counts_the_int8_bytes(model_file, tmp_path):
    out32, out8 = tmp_path / "a.json", tmp_path / "b.json"
    for prec, out in (("float32", out32), ("int8", out8)):
        res = CliRunner().invoke(app, ["bench", "--model", str(model_file), "--seconds", "1.5", "--parallel-seconds",
                                       "1.5", "--sessions", "", "--step-iters", "2", "--threads", "1",
                                       "--precision", prec, "--json", str(out)])
        assert res.exit_code == 0, res.output
    d32, d8 = json.loads(out32.read_text()), json.loads(out8.read_text())
    assert d8["precision"] == "int8" and "int8 weight-only matrix products" in res.output
    assert d8["step"]["read_bytes"] < d32["step"]["read_bytes"]  # int8 weights: fewer bytes, the same caches


def test_step_read_bytes_count_weights_and_caches(engine):
    from livegesture.bench import step_read_bytes
    from livegesture.streaming.state import state_nbytes

    model = engine.bundle.model
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    one, two = step_read_bytes(model, 1), step_read_bytes(model, 2)
    state = model.init_state(1, guidance=True)
    caches = state_nbytes(state["experts"]) + state_nbytes(state["fuse"])
    assert two - one >= caches  # a second session brings its own caches
    assert 0.3 * params < one - caches < 1.5 * params  # the weights, roughly once (not the audio encoder)


@pytest.mark.parametrize("args,msg", [(["--size", "huge"], "--size must be demo or base"),
                                      (["--sessions", "1,x"], "comma-separated integers"),
                                      (["--seconds", "0.5"], "at least 1.5"),
                                      (["--precision", "fp8"], "--precision must be one of float32, int8")])
def test_cli_bench_bad_options(args, msg, capsys):
    from livegesture.cli import main
    import sys

    old = sys.argv
    sys.argv = ["livegesture", "bench", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
