"""The compiled one-row step against the eager one, alternated in one process (docs/design.md §6).

For each model (the bundled demo model and a randomly initialised base model) and precision:
the time to compile, the median KV-cached step eager and compiled (alternated call by call on
two states fed the same tokens, so both see the same machine load), their ratio, each over the
memory floor measured in the same process, and how far the compiled logits are from eager.

    OMP_NUM_THREADS=1 python benchmarks/compiled_step.py [--sizes bundled,base] [--precisions float32,int8]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from livegesture import LiveGesture
from livegesture.bench import memory_bandwidth_gbs, random_bundle, step_read_bytes
from livegesture.engine.compiled import CompiledStep


def run(name: str, make, precision: str, iters: int) -> None:
    lg = make(precision)
    model, scale = lg.bundle.model, lg.sampling.guidance_scale
    t0 = time.perf_counter()
    lib = CompiledStep(copy.deepcopy(model), 1, True, scale, kernel=False)  # a model of its own: the
    # kernel switch is the model's, and dynamo would retrace a program when it flips
    t1 = time.perf_counter()
    ker = CompiledStep(model, 1, True, scale, kernel=True)
    t2 = time.perf_counter()
    steps = {"eager": model.step, "compiled": lib}
    if ker.kernel:
        steps["compiled+kernel"] = ker
    else:
        print(f"{name}: {ker.kernel_note}")
    cfg = model.config
    H = cfg.window_tokens
    g = torch.Generator().manual_seed(0)
    T = H + 4 + iters
    feats = torch.randn(1, 4 * T, cfg.audio.dim, generator=g)
    toks = torch.randint(cfg.codebook_size, (1, model.num_regions, T), generator=g)
    times: dict[str, list[float]] = {k: [] for k in steps}
    worst = {k: 0.0 for k in steps}
    with torch.no_grad():
        states = {k: model.init_state(1, guidance=True) for k in steps}
        for t in range(T):
            x, p = feats[:, 4 * t:4 * t + 4], toks[:, :, t:t + 1]
            out = {}
            for k, step in steps.items():  # alternated call by call: every mode sees the same load
                ta = time.perf_counter()
                out[k] = step(states[k], x, p, scale)
                if t >= H + 4:
                    times[k].append(time.perf_counter() - ta)
            for k in steps:
                worst[k] = max(worst[k], float((out[k] - out["eager"]).abs().max()))
    floor = 1e3 * step_read_bytes(model, 1, True) / (1e9 * memory_bandwidth_gbs())
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    print(f"{name:8s} {precision:8s} compile {t1 - t0:6.1f} s (+kernel {t2 - t1:6.1f} s), floor {floor:5.2f} ms",
          flush=True)
    for k in steps:
        print(f"    {k:16s} {ms[k]:6.2f} ms  {ms['eager'] / ms[k]:4.2f}x eager  {ms[k] / floor:5.2f}x floor  "
              f"max |logit diff| from eager {worst[k]:.2e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="bundled,base")
    ap.add_argument("--precisions", default="float32,int8")
    ap.add_argument("--iters", type=int, default=60)
    args = ap.parse_args()
    makers = {"bundled": lambda prec: LiveGesture.load(precision=prec),
              "demo": lambda prec: LiveGesture(random_bundle("demo"), prec),
              "base": lambda prec: LiveGesture(random_bundle("base"), prec)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for size in args.sizes.split(","):
        for prec in args.precisions.split(","):
            run(size, makers[size], prec, args.iters)


if __name__ == "__main__":
    main()
