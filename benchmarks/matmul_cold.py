"""How fast do the streaming step's matrix products read their weights from memory? (issue 13)

At batch 1 the KV-cached step multiplies a few rows (2 with guidance, padded to 4) by weights that
no cache holds (the base model reads ~117 MB per step), so each product streams its weights from
DRAM. This times the products the grouped experts use, shape (4 regions, M rows, I) x (4, I, O), over
a ring of weight copies larger than the last-level cache, next to the read bandwidth of a plain sum,
in one process: how far the GEMM kernels are from the memory floor, and what bfloat16 weights buy.

With a C++ compiler on the machine (``--hand``, the default when one is found), a third column
times the hand-written streaming kernel of ``livegesture/model/stream_kernel.cpp`` (tile-packed
weights read once, sequentially) on the same weights, with its largest difference from ``baddbmm``
and whether its rows are independent of the row count: what a kernel written for this shape buys
over the library's. The compiled one-row step uses that kernel; the eager step does not
(docs/design.md section 6).

    OMP_NUM_THREADS=1 python benchmarks/matmul_cold.py
"""

from __future__ import annotations

import argparse
import time

import torch


def timed(fn, copies: int, rounds: int = 3) -> float:
    """Mean seconds of fn(i) over `rounds` passes through the ring of `copies` weights (one warm pass)."""
    for i in range(copies):
        fn(i)
    t0 = time.perf_counter()
    for i in range(rounds * copies):
        fn(i % copies)
    return (time.perf_counter() - t0) / (rounds * copies)


def hand_kernel():
    """The streaming kernel's module (livegesture/model/stream_kernel.py), or None (with the reason
    printed)."""
    from livegesture.model import stream_kernel

    why = stream_kernel.load()
    if why is not None:
        print(f"hand-written kernel: not timed ({why})")
        return None
    return stream_kernel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ring-mb", type=float, default=192.0, help="total size of the weight ring (> the caches)")
    ap.add_argument("--hand", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the hand-written streaming kernel (needs a C++ compiler)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    hand = hand_kernel() if a.hand else None
    x = torch.ones(64 * 2 ** 20)
    x.sum()
    t = timed(lambda i: x.sum(), 1, 5)
    print(f"read bandwidth (sum of 256 MB): {x.numel() * 4 / t / 1e9:.1f} GB/s")
    del x
    R = 4
    print("shape (R, M, I) x (R, I, O)  |  fp32 baddbmm  |  bf16 bmm (weights and rows in bf16)"
          + ("  |  hand kernel, fp32 (vs baddbmm)" if hand else ""))
    for M in (2, 4, 8):
        for I, O in ((256, 1024), (1024, 256), (256, 256)):
            nbytes = R * I * O * 4
            copies = max(4, int(a.ring_mb * 2 ** 20 / nbytes))
            w = [torch.randn(R, I, O) for _ in range(copies)]
            wb = [v.to(torch.bfloat16) for v in w]
            b = torch.randn(R, 1, O)
            xs, xb = torch.randn(R, M, I), torch.randn(R, M, I).to(torch.bfloat16)
            with torch.inference_mode():
                t32 = timed(lambda i: torch.baddbmm(b, xs, w[i]), copies)
                t16 = timed(lambda i: torch.bmm(xb, wb[i]), copies)
            line = (f"({R}, {M}, {I}) x ({R}, {I}, {O})  |  {1e6 * t32:6.0f} us {nbytes / t32 / 1e9:5.1f} GB/s  |  "
                    f"{1e6 * t16:6.0f} us {nbytes / 2 / t16 / 1e9:5.1f} GB/s ({t32 / t16:.2f}x faster)")
            del wb
            if hand is not None:
                ref = torch.baddbmm(b, xs, w[0])
                p = [hand.pack(v) for v in w]
                w = []
                with torch.inference_mode():
                    th = timed(lambda i: hand.stream_mm(b, xs, p[i]), copies)
                    ts = timed(lambda i: p[i].sum(), copies)
                got = hand.stream_mm(b, xs, p[0])
                alone = all(torch.equal(hand.stream_mm(b, xs[:, m:m + 1], p[0])[:, 0], got[:, m]) for m in range(M))
                line += (f"  |  {1e6 * th:6.0f} us {nbytes / th / 1e9:5.1f} GB/s ({t32 / th:.2f}x faster; a sum of "
                         f"the same bytes {nbytes / ts / 1e9:.1f} GB/s; max diff {float((got - ref).abs().max()):.1e}, "
                         f"rows independent: {alone})")
                del p
            print(line)
            del w


if __name__ == "__main__":
    main()
