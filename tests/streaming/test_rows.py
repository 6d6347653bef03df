"""Row-invariant products: the GEMM property the engine relies on, and the padded helpers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from livegesture.streaming.rows import MIN_ROWS, baddbmm_rows, rowwise


@pytest.mark.parametrize("k,n", [(32, 36), (64, 192), (256, 1024)])
def test_rows_of_a_product_do_not_depend_on_the_row_count(k, n):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40, k, generator=g)
    w, b = torch.randn(3, k, n, generator=g), torch.randn(3, 1, n, generator=g)
    lin_w, lin_b = torch.randn(n, k, generator=g), torch.randn(n, generator=g)
    ref = [baddbmm_rows(b, x[:, i:i + 1], w) for i in range(40)]
    ref_lin = [rowwise(lambda t: F.linear(t, lin_w, lin_b), x[0, i:i + 1]) for i in range(40)]
    for M in (1, 2, 3, MIN_ROWS, 5, 8, 17, 40):
        y = baddbmm_rows(b, x[:, :M], w)
        assert y.is_contiguous()
        assert all(torch.equal(y[:, i:i + 1], ref[i]) for i in range(M)), M
        strided = x[:, :M].transpose(0, 1)[:, 0]  # (M, k) rows of a strided view
        z = rowwise(lambda t: F.linear(t, lin_w, lin_b), strided)
        assert all(torch.equal(z[i:i + 1], ref_lin[i]) for i in range(M)), M


def test_a_padded_row_equals_the_same_row_in_a_big_product():
    """MKL (torch 2.13, AVX-512) rounds a 1-3-row product differently from a >= 4-row one; the padded
    one-row product must be the big product's row."""
    g = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(4, 8, 256, generator=g), torch.randn(4, 256, 256, generator=g), torch.zeros(4, 1, 256)
    assert torch.equal(baddbmm_rows(b, x[:, :1], w), torch.baddbmm(b, x, w)[:, :1])
    assert torch.equal(baddbmm_rows(b, x[:, 2:5], w), torch.baddbmm(b, x, w)[:, 2:5])
