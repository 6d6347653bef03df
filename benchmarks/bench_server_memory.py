"""Server memory under hostile load: RSS of a `livegesture serve` child process over rounds of
50 hostile connections (garbage, NaN audio, disconnects, aborts, odd byte counts) interleaved
with 2 real clients (--hostile / --real change the mix), and how far the real clients' frames move from round 0.

    python benchmarks/bench_server_memory.py --model MODEL.safetensors [--rounds 16] [--hold]

Without --model a demo-size model with random weights is written to a temporary file (the
server's memory does not depend on the weights). Printed per round: the server's RSS (MiB) one
second after the round, its open file descriptors, max |poses - round 0| of the real clients, and client-side errors.
The server goes idle between rounds (and then collects and trims its memory) unless --hold keeps one
more session open through every round, as under continuous load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
from livegesture.data import synthetic_audio  # noqa: E402
from livegesture.serve.bench import start_server  # noqa: E402
from livegesture.serve.client import stream_audio  # noqa: E402
from tests.serve.test_robustness import _hostile  # noqa: E402  (the hostile clients of the test)


def random_demo_model(path: Path) -> Path:
    import torch

    from livegesture.body.constants import REGION_DIMS, REGIONS
    from livegesture.bundle import ModelBundle
    from livegesture.data.features import RegionStats
    from livegesture.tokenizer import MotionTokenizer
    from livegesture.train.config import load_experiment

    cfg = load_experiment("demo")
    rng = np.random.default_rng(0)
    stats = RegionStats({r: (0.1 * rng.standard_normal(REGION_DIMS[r])).astype(np.float32) for r in REGIONS},
                        {r: np.full(REGION_DIMS[r], 0.5, np.float32) for r in REGIONS})
    torch.manual_seed(0)
    ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), stats).save(path)
    return path


def _hold(url: str) -> None:
    """One session streaming silence at about real time for as long as the process runs."""
    import json

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    try:
        with connect(url) as ws:
            ws.send(json.dumps({"type": "start", "format": "f32"}))
            ws.recv()
            while True:
                ws.send(np.zeros(1600, "<f4").tobytes())
                time.sleep(0.1)
                try:
                    while True:
                        ws.recv(timeout=0)
                except TimeoutError:
                    pass
    except (ConnectionClosed, OSError):
        return  # the server stopped (the end of the benchmark, or a failure the rounds show)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path)
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--hostile", type=int, default=50)
    ap.add_argument("--real", type=int, default=2, help="real clients per round")
    ap.add_argument("--hold", action="store_true", help="keep one session open through every round")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    model = args.model or random_demo_model(Path(tmp.name) / "demo_random.safetensors")
    proc, url = start_server(model, max_sessions=args.hostile + args.real + 8)

    def rss() -> int:
        with open(f"/proc/{proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) // 1024

    audio = synthetic_audio(3.0, seed=21)[0].astype(np.float32)

    async def one_round():
        out = await asyncio.gather(*(stream_audio(url, audio, seed=s, realtime=False) for s in range(args.real)),
                                   *(_hostile(url, i) for i in range(args.hostile)), return_exceptions=True)
        return out[:args.real], [o for o in out if isinstance(o, BaseException)]

    held = None
    if args.hold:
        import threading

        held = threading.Thread(target=_hold, args=(url,), daemon=True)
        held.start()
        time.sleep(2.0)
    try:
        print(f"server RSS after start: {rss()} MiB{' (one session held open)' if args.hold else ''}")
        ref = None
        for k in range(args.rounds):
            real, errors = asyncio.run(one_round())
            time.sleep(1.0)
            if errors:
                print(f"round {k}: client-side errors: {errors[:3]}")
            poses = [r.motion.poses for r in real]
            ref = ref or poses
            diff = max(float(np.abs(p - q).max()) for p, q in zip(poses, ref))
            fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
            print(f"round {k:2d}: server RSS {rss()} MiB   open fds {fds}   real clients max |poses - round 0| "
                  f"{diff:.2e}   client-side errors {len(errors)}"
                  f"{'' if held is None else '   held session open' if held.is_alive() else '   HELD SESSION ENDED'}")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
