"""Compute time of one KV-cached token step of LiveGestureModel vs. recomputing the window.

    python benchmarks/bench_model_step.py [--threads 1] [--iters 50] [--device cpu]

For the "demo" and "base" sizes and batch 1 and 16, with classifier-free guidance on
(every session runs its conditional and unconditional streams in one batched call,
2B rows): a randomly initialised model (float32, eval, inference mode) first streams
H + 8 tokens so that every ring cache is full, then

* ``cached``: one ``step`` of 1 token for all 4 regions and the fuse (what streaming does
  every 133 ms), median over ``--iters`` calls;
* ``recompute``: the same logits without a cache: a fresh state and one teacher-forced
  ``step`` over the whole window of H tokens (what a cache-less implementation pays per token).

Printed: median ms per call (whole batch), ms per session, and recompute / cached.
The audio encoder is not included (see bench_audio_encoder.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from livegesture.model import LiveGestureModel, ModelConfig  # noqa: E402


def _median_ms(fn, iters: int, sync) -> float:
    times = []
    for _ in range(iters):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench(cfg: ModelConfig, batch: int, iters: int, device: torch.device) -> tuple[float, float, int]:
    torch.manual_seed(0)
    model = LiveGestureModel(cfg).to(device).eval()
    H, K, da = cfg.window_tokens, cfg.codebook_size, cfg.audio.dim
    g = torch.Generator(device=device).manual_seed(1)
    warm = H + 8
    feats = torch.randn(batch, 4 * (warm + iters + 10), da, generator=g, device=device)
    toks = torch.randint(K, (batch, 4, warm + iters + 10), generator=g, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        state = model.init_state(batch, guidance=True)
        for tau in range(warm):
            model.step(state, feats[:, 4 * tau:4 * tau + 4], toks[:, :, tau:tau + 1], guidance_scale=1.5)
        pos = [warm]

        def cached() -> None:
            tau = pos[0]
            model.step(state, feats[:, 4 * tau:4 * tau + 4], toks[:, :, tau:tau + 1], guidance_scale=1.5)
            pos[0] += 1

        def recompute() -> None:
            fresh = model.init_state(batch, guidance=True)
            model.step(fresh, feats[:, :4 * H], toks[:, :, :H], guidance_scale=1.5)

        for _ in range(3):
            recompute()
        t_cached = _median_ms(cached, iters, sync)
        t_full = _median_ms(recompute, iters, sync)
    return t_cached, t_full, sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, float32, "
          f"guidance on (2B rows), {args.iters} timed calls")
    print(f"{'size':>5} {'params':>8} {'batch':>5} {'H':>3} {'cached ms':>10} {'ms/session':>10} "
          f"{'recompute ms':>12} {'ratio':>6}")
    for name in ("demo", "base"):
        cfg = getattr(ModelConfig, name)()
        for batch in (1, 16):
            c, f, n = bench(cfg, batch, args.iters, device)
            print(f"{name:>5} {n / 1e6:7.2f}M {batch:>5} {cfg.window_tokens:>3} {c:10.2f} {c / batch:10.3f} "
                  f"{f:12.2f} {f / c:6.1f}")


if __name__ == "__main__":
    main()
