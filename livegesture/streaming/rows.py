"""Row-invariant matrix products: a session's numbers must not depend on who shares its batch.

Why: the engine steps any subset of its sessions together (a lone stream, a lockstep batch,
the server's pool with sessions arriving at their own times), and streamed output must be
bit-identical whatever the company. Row-wise maths (layer norm, softmax, element-wise ops,
per-(batch, head) attention) already gives every row the same float result whatever the
number of rows; a CPU GEMM does not: MKL takes other kernels for very few rows (measured
with torch 2.13's MKL 2024.2 on AVX-512: ``addmm`` rounds 1 row one way, 2-3 rows another
and every count >= 4 a third, identical, way; ``baddbmm`` 1-3 rows vs >= 4). So products
with few rows are padded with zero rows up to :data:`MIN_ROWS` and the padding is dropped,
returning a contiguous tensor as the unpadded product would (element-wise kernels such as
GELU take other code paths, with other rounding, on strided inputs).
``tests/streaming/test_rows.py`` checks the property these helpers rely on on the machine
that runs the tests; the engine's equality tests check the result end to end.
"""

from __future__ import annotations

from typing import Callable

import torch

#: row counts below this are padded (every count >= 4 takes the same GEMM path)
MIN_ROWS = 4


def _pad_rows(x: torch.Tensor, dim: int, rows: int) -> torch.Tensor:
    shape = list(x.shape)
    shape[dim] = rows - x.shape[dim]
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def baddbmm_rows(bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``torch.baddbmm(bias, x, w)`` for x (G, M, K), w (G, K, N) with every row of the result
    independent of M (rows padded to :data:`MIN_ROWS`)."""
    M = x.shape[1]
    x = x.contiguous()  # a strided input takes another GEMM path
    if M >= MIN_ROWS or M == 0:
        return torch.baddbmm(bias, x, w)
    return torch.baddbmm(bias, _pad_rows(x, 1, MIN_ROWS), w)[:, :M].contiguous()


def rowwise(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for a row-wise `fn` (a linear layer, a head: the last dim in, the last dim out) on
    the rows of `x` (all leading dims flattened, made contiguous: MKL rounds a strided operand
    differently) padded to :data:`MIN_ROWS`."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).contiguous()  # a strided input takes another GEMM path
    M = flat.shape[0]
    y = fn(flat) if M >= MIN_ROWS or M == 0 else fn(_pad_rows(flat, 0, MIN_ROWS))[:M].contiguous()
    return y.reshape(*lead, y.shape[-1])
