"""``livegesture bench-server``: N concurrent real-time clients on loopback.

Every client streams the same speech (its own seed) in 20 ms pcm16 packets paced in real time
and receives binary frames. Per trial: client-measured latency percentiles over all frames
(arrival - send time of the packet that completed the frame's audio), dropped frames (expected
minus received) and late frames (latency above the bound). N is served in real time when no
session failed or dropped a frame and the p95 latency stays under the bound. The search doubles
N until that fails, then bisects between the last success and the first failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .client import stream_audio

__all__ = ["Trial", "run_trial", "search", "start_server", "worker_pids"]


@dataclass(frozen=True)
class Trial:
    clients: int
    frames_expected: int
    frames_received: int
    failed_sessions: int
    p50: float
    p95: float
    p99: float
    late: int
    max_latency: float

    @property
    def dropped(self) -> int:
        return self.frames_expected - self.frames_received

    def ok(self, bound: float) -> bool:
        return self.failed_sessions == 0 and self.dropped == 0 and self.p95 <= bound

    def line(self, bound: float) -> str:
        return (f"N={self.clients:3d}  latency p50 {1000 * self.p50:6.1f} ms  p95 {1000 * self.p95:6.1f} ms  "
                f"p99 {1000 * self.p99:6.1f} ms  max {1000 * self.max_latency:6.1f} ms  dropped {self.dropped}  "
                f"late(>{1000 * bound:.0f} ms) {self.late}  failed {self.failed_sessions}  "
                f"{'real time' if self.ok(bound) else 'NOT real time'}")


async def _trial(url: str, audio: np.ndarray, n: int, packet_ms: float, bound: float) -> Trial:
    async def one(i: int):
        await asyncio.sleep(0.02 * (i % 10))  # clients do not all start on the same packet boundary
        return await stream_audio(url, audio, seed=i, packet_ms=packet_ms, realtime=True, output="binary")

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    tokens = (len(audio) * 3 // 1600) // 4
    expected = 4 * tokens * n
    ok = [r for r in results if not isinstance(r, BaseException)]
    lat = np.concatenate([r.latencies for r in ok]) if ok else np.zeros(0)
    pct = np.percentile(lat, [50, 95, 99]) if len(lat) else [float("nan")] * 3
    return Trial(n, expected, sum(len(r.motion) for r in ok), n - len(ok), float(pct[0]), float(pct[1]),
                 float(pct[2]), int((lat > bound).sum()), float(lat.max()) if len(lat) else float("nan"))


def run_trial(url: str, audio: np.ndarray, n: int, packet_ms: float = 20.0, bound: float = 0.3) -> Trial:
    return asyncio.run(_trial(url, audio, n, packet_ms, bound))


def search(url: str, audio: np.ndarray, max_clients: int, packet_ms: float = 20.0, bound: float = 0.3,
           report=print) -> tuple[int, list[Trial]]:
    """The largest N (<= max_clients) served in real time, and every trial run."""
    trials: list[Trial] = []

    def ok(n: int) -> bool:
        t = run_trial(url, audio, n, packet_ms, bound)
        trials.append(t)
        report(t.line(bound))
        return t.ok(bound)

    best, n = 0, 1
    while n <= max_clients and ok(n):
        best, n = n, n * 2
    hi = min(n, max_clients + 1)
    while hi - best > 1:
        mid = (best + hi) // 2
        if ok(mid):
            best = mid
        else:
            hi = mid
    return best, trials


def worker_pids(proc: subprocess.Popen) -> list[int]:
    """The server process's uvicorn worker processes (children started by multiprocessing's spawn, not its
    resource tracker; Linux /proc, [] elsewhere)."""
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(v) for v in f.read().split()]
    except OSError:
        return []
    out = []
    for pid in children:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def _wait_for_workers(proc: subprocess.Popen, workers: int, deadline: float) -> None:
    """Until `workers` worker processes exist and have had a few seconds to load their model."""
    while len(worker_pids(proc)) < workers and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(5.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, max_sessions: int, threads: int = 1, workers: int = 1,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`livegesture serve` in a child process on a free loopback port (`workers` uvicorn workers, each
    with `threads` torch threads and `max_sessions` sessions; `extra` serve options, `env` extra
    environment variables); returns (process, ws url)."""
    import httpx

    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "livegesture", "serve", "--port", str(port), "--model", str(model),
                             "--max-sessions", str(max_sessions), "--log-level", "warning",
                             "--workers", str(workers), "--threads", str(threads), *extra], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                if workers > 1:  # one worker answered; give the others (loading in parallel) time to finish
                    _wait_for_workers(proc, workers, deadline)
                return proc, f"ws://127.0.0.1:{port}/ws"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")
