"""What a hand-written product kernel would buy the whole streaming step (issue 13).

`benchmarks/matmul_cold.py` times single products; this puts the streaming kernel of
``livegesture/model/stream_kernel.cpp`` under every float32 product of the grouped experts and
the fuse (products whose output width is a multiple of 64; the rest stay on the library) and
times the KV-cached step both ways, alternated in one process on states fed the same inputs,
next to the memory floor that ``livegesture bench`` uses and to the same graph at width 64
(model and audio dims 64: a sixteenth of the weights, all in cache), whose time is the per-op
part of the step that no product kernel removes. The package's eager step does not use the
kernel (its compiled one-row step does: benchmarks/compiled_step.py); this measures the kernel
alone under the eager step (docs/design.md section 6).

    OMP_NUM_THREADS=1 python benchmarks/step_native_products.py [--size base] [--batch 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from livegesture.bench import memory_bandwidth_gbs, random_bundle, step_read_bytes
from livegesture.model import grouped, grouped_fuse, stream_kernel


class NativeProducts:
    """Swaps StackedWeights.mm and GroupedFuse.linear for the streaming kernel while active (on the
    package's own tile-packed copies, ``StackedWeights.packed_weight``)."""

    def __init__(self):
        self.mm, self.linear = grouped.StackedWeights.mm, grouped_fuse.GroupedFuse.linear

    def use(self, on: bool) -> None:
        mm0, lin0 = self.mm, self.linear

        def mm(sw, name, x, pad=False):
            p = None if sw.q else sw.packed_weight(name)
            if p is None:
                return mm0(sw, name, x, pad)
            return stream_kernel.stream_mm(sw.w[name + "b"], x, p)

        def linear(gf, name, x):
            p = None if gf.q else gf.packed_weight(name, transposed=True)
            if p is None:
                return lin0(gf, name, x)
            y = stream_kernel.stream_mm(gf.w[name + "b"], x.reshape(1, -1, x.shape[-1]), p)
            return y.view(*x.shape[:-1], -1)

        grouped.StackedWeights.mm = mm if on else mm0
        grouped_fuse.GroupedFuse.linear = linear if on else lin0


def step_times(model, nat: NativeProducts | None, iters: int, batch: int) -> tuple[dict, torch.Tensor]:
    """Median KV-cached step (ms) with the library's products and, given `nat`, the kernel's (alternated),
    after a full window; and the largest difference of the last logits."""
    cfg = model.config
    H = cfg.window_tokens
    g = torch.Generator().manual_seed(1)
    T = H + 8 + iters
    feats = torch.randn(batch, 4 * T, cfg.audio.dim, generator=g)
    toks = torch.randint(cfg.codebook_size, (batch, model.num_regions, T), generator=g)
    modes = (False, True) if nat is not None else (False,)
    times: dict[bool, list[float]] = {on: [] for on in modes}
    with torch.inference_mode():
        states = {on: model.init_state(batch, guidance=True) for on in modes}
        for t in range(T):
            out = {}
            for on in modes:
                if nat is not None:
                    nat.use(on)
                t0 = time.perf_counter()
                out[on] = model.step(states[on], feats[:, 4 * t:4 * t + 4], toks[:, :, t:t + 1], 1.5)
                if t >= H + 8:
                    times[on].append(time.perf_counter() - t0)
    if nat is not None:
        nat.use(False)
    diff = (out[False] - out[True]).abs().max() if nat is not None else torch.zeros(())
    return {on: 1e3 * statistics.median(v) for on, v in times.items()}, diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="base")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=60)
    a = ap.parse_args()
    torch.set_num_threads(1)
    why = stream_kernel.load()
    if why is not None:
        raise SystemExit(why)
    model = random_bundle(a.size).model
    t, diff = step_times(model, NativeProducts(), a.iters, a.batch)
    lib, hand = t[False], t[True]
    narrow, _ = step_times(random_bundle(a.size, overrides={"model": {"dim": 64, "audio": {"dim": 64}}}).model,
                           None, a.iters, a.batch)
    floor = 1e3 * step_read_bytes(model, a.batch, True) / (1e9 * memory_bandwidth_gbs())
    print(f"{a.size} model, batch {a.batch}, guidance on, one thread: KV-cached step {lib:.2f} ms with the library's "
          f"products ({lib / floor:.2f}x the floor), {hand:.2f} ms with the streaming kernel ({hand / floor:.2f}x); "
          f"floor {floor:.2f} ms; {lib / hand:.2f}x faster; last logits differ by {float(diff):.1e}; the same graph "
          f"at width 64 (per-op part): {narrow[False]:.2f} ms ({narrow[False] / floor:.2f}x the floor)")


if __name__ == "__main__":
    main()
