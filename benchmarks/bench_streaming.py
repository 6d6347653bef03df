"""Streamed single-token attention step vs recomputing the whole window for that token.

    python benchmarks/bench_streaming.py [--batch 1] [--threads 0] [--iters 2000]

Layer: StreamingSelfAttention(dim=256, heads=4, window=32), float32, eval, no grad.
"streamed": one call of ``step`` with 1 new token on a state that already holds a
full window. "recompute": ``forward`` on the last 32 tokens from a fresh state (what
a model without a KV cache does for every new token); only its last row is needed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from livegesture.streaming import StreamingSelfAttention  # noqa: E402


def timeit(fn, iters: int, repeats: int = 5) -> float:
    """Median over `repeats` of the mean seconds per call."""
    for _ in range(max(10, iters // 10)):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        runs.append((time.perf_counter() - t0) / iters)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dim, heads, window = 256, 4, 32
    dev = torch.device(args.device)
    att = StreamingSelfAttention(dim, heads, window).to(dev).eval()
    B = args.batch
    history = torch.randn(B, 4 * window, dim, device=dev)
    tok = torch.randn(B, 1, dim, device=dev)
    win = history[:, -window:]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    with torch.inference_mode():
        state = att.init_state(B, device=dev)
        att(history, state)  # the ring holds a full window
        # correctness of the comparison: the streamed token equals recomputing its window
        ref = att(torch.cat([history[:, -(window - 1):], tok], 1))[:, -1:]
        probe = {k: v.clone() for k, v in state.items()}
        assert torch.allclose(att(tok, probe), ref, atol=1e-5)

        def streamed():
            att(tok, state)
            sync()

        def recompute():
            att(win)[:, -1:]
            sync()

        t_stream = timeit(streamed, args.iters)
        t_full = timeit(recompute, args.iters)
    print(f"StreamingSelfAttention dim={dim} heads={heads} window={window} batch={B} "
          f"device={dev} threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"streamed 1-token step        : {t_stream * 1e6:9.1f} us/step")
    print(f"recompute {window}-token window   : {t_full * 1e6:9.1f} us/step")
    print(f"ratio recompute / streamed   : {t_full / t_stream:9.2f} x")


if __name__ == "__main__":
    main()
