"""How fast do the streaming step's matrix products read their weights from memory? (issue 13)

At batch 1 the KV-cached step multiplies a few rows (2 with guidance, padded to 4) by weights that
no cache holds (the base model reads ~117 MB per step), so each product streams its weights from
DRAM. This times the products the grouped experts use, shape (4 regions, M rows, I) x (4, I, O), over
a ring of weight copies larger than the last-level cache, next to the read bandwidth of a plain sum,
in one process: how far the GEMM kernels are from the memory floor, and what bfloat16 weights buy.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ring-mb", type=float, default=192.0, help="total size of the weight ring (> the caches)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.ones(64 * 2 ** 20)
    x.sum()
    t = timed(lambda i: x.sum(), 1, 5)
    print(f"read bandwidth (sum of 256 MB): {x.numel() * 4 / t / 1e9:.1f} GB/s")
    del x
    R = 4
    print("shape (R, M, I) x (R, I, O)  |  fp32 baddbmm  |  bf16 bmm (weights and rows in bf16)")
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
            print(f"({R}, {M}, {I}) x ({R}, {I}, {O})  |  {1e6 * t32:6.0f} us {nbytes / t32 / 1e9:5.1f} GB/s  |  "
                  f"{1e6 * t16:6.0f} us {nbytes / 2 / t16 / 1e9:5.1f} GB/s ({t32 / t16:.2f}x faster)")
            del w, wb


if __name__ == "__main__":
    main()
