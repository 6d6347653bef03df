"""The compiled one-row step against the eager one, alternated in one process (docs/design.md §6).

For each model (the bundled demo model and a randomly initialised base model) and precision:
the time to compile, the median KV-cached step eager and compiled (alternated call by call on
two states fed the same tokens, so both see the same machine load), their ratio, each over the
memory floor measured in the same process, and how far the compiled logits are from eager.

    OMP_NUM_THREADS=1 python benchmarks/compiled_step.py [--sizes bundled,base] [--precisions float32,int8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from livegesture import LiveGesture
from livegesture.bench import memory_bandwidth_gbs, random_bundle, step_read_bytes


def run(name: str, make, precision: str, iters: int) -> None:
    t0 = time.perf_counter()
    lg = make(precision)
    compile_s = time.perf_counter() - t0
    model, step = lg.bundle.model, lg.compiled_step(lg.sampling)
    cfg = model.config
    H = cfg.window_tokens
    scale = lg.sampling.guidance_scale
    g = torch.Generator().manual_seed(0)
    T = H + 4 + iters
    feats = torch.randn(1, 4 * T, cfg.audio.dim, generator=g)
    toks = torch.randint(cfg.codebook_size, (1, model.num_regions, T), generator=g)
    te, tc, worst = [], [], 0.0
    with torch.no_grad():
        a, b = model.init_state(1, guidance=True), model.init_state(1, guidance=True)
        for t in range(T):
            x, p = feats[:, 4 * t:4 * t + 4], toks[:, :, t:t + 1]
            t1 = time.perf_counter()
            la = model.step(a, x, p, scale)
            t2 = time.perf_counter()
            lb = step(b, x, p, scale)
            t3 = time.perf_counter()
            worst = max(worst, float((la - lb).abs().max()))
            if t >= H + 4:
                te.append(t2 - t1)
                tc.append(t3 - t2)
    floor = 1e3 * step_read_bytes(model, 1, True) / (1e9 * memory_bandwidth_gbs())
    e, c = 1e3 * statistics.median(te), 1e3 * statistics.median(tc)
    print(f"{name:8s} {precision:8s} compile+load {compile_s:6.1f} s  step eager {e:6.2f} ms  compiled {c:6.2f} ms  "
          f"speed-up {e / c:4.2f}x  floor {floor:5.2f} ms: eager {e / floor:5.2f}x, compiled {c / floor:5.2f}x  "
          f"max |logit diff| {worst:.2e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="bundled,base")
    ap.add_argument("--precisions", default="float32,int8")
    ap.add_argument("--iters", type=int, default=60)
    args = ap.parse_args()
    makers = {"bundled": lambda prec: LiveGesture.load(precision=prec, compile=True),
              "demo": lambda prec: LiveGesture(random_bundle("demo"), prec, compile=True),
              "base": lambda prec: LiveGesture(random_bundle("base"), prec, compile=True)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for size in args.sizes.split(","):
        for prec in args.precisions.split(","):
            run(size, makers[size], prec, args.iters)


if __name__ == "__main__":
    main()
