"""The streaming kernels (livegesture/model/stream_kernel.py): the library's product and attention
within float32 rounding, every row independent of its company and of the thread count (bit for
bit), keys a query does not see never read, bad shapes refused, a failed build reported in one line."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from livegesture.model import stream_kernel

WHY = stream_kernel.load()
needs_kernel = pytest.mark.skipif(WHY is not None, reason=str(WHY))


def operands(G: int, M: int, K: int, N: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(G, 1, N, generator=g), torch.randn(G, M, K, generator=g),
            torch.randn(G, K, N, generator=g) / K ** 0.5)


@needs_kernel
@pytest.mark.parametrize("G,K,N", [(4, 256, 128), (1, 64, 192), (2, 100, 64), (4, 1024, 256)])
@pytest.mark.parametrize("M", [1, 2, 4, 5, 8, 9, 17])
def test_matches_baddbmm_and_rows_are_independent_of_company(G, K, N, M):
    b, x, w = operands(G, M, K, N)
    p = stream_kernel.pack(w)
    y = stream_kernel.stream_mm(b, x, p)
    torch.testing.assert_close(y, torch.baddbmm(b, x, w), rtol=1e-5, atol=1e-5)
    for m in range(M):  # each row alone gives the same bits as in the company of the others
        assert torch.equal(stream_kernel.stream_mm(b, x[:, m:m + 1], p), y[:, m:m + 1]), m


@needs_kernel
def test_thread_count_does_not_change_bits():
    b, x, w = operands(4, 3, 512, 512, seed=1)
    p = stream_kernel.pack(w)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = stream_kernel.stream_mm(b, x, p)
        torch.set_num_threads(2)
        two = stream_kernel.stream_mm(b, x, p)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@needs_kernel
def test_a_strided_bias_and_rows_are_taken_as_values():
    b, x, w = operands(2, 4, 64, 128, seed=2)
    p = stream_kernel.pack(w)
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    assert torch.equal(stream_kernel.stream_mm(b.view(2, 128), xt, p), stream_kernel.stream_mm(b, x, p))


@needs_kernel
def test_bad_operands_are_refused():
    b, x, w = operands(2, 2, 64, 128)
    with pytest.raises(RuntimeError, match="shapes disagree"):
        stream_kernel.stream_mm(b, x[:, :, :32], stream_kernel.pack(w))
    with pytest.raises(RuntimeError, match="float32 only"):
        stream_kernel.stream_mm(b.double(), x.double(), stream_kernel.pack(w).double())


def test_packable_and_pack_layout():
    w = torch.arange(2 * 3 * 128, dtype=torch.float32).view(2, 3, 128)
    assert stream_kernel.packable(w)
    assert not stream_kernel.packable(w[:, :, :100])
    assert not stream_kernel.packable(w.double())
    assert not stream_kernel.packable(w[0])
    p = stream_kernel.pack(w)
    assert p.shape == (2, 2, 3, 64)
    assert torch.equal(p[1, 1], w[1, :, 64:])  # tile t holds columns 64t .. 64t+63 of every input row


def test_a_failed_build_is_one_line(monkeypatch, tmp_path):
    cxx = tmp_path / "broken-c++"
    cxx.write_text("#!/bin/sh\necho 'fatal error: no such header' >&2\nexit 1\n")
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(stream_kernel, "_loaded", [])
    monkeypatch.setattr(stream_kernel, "cxx_compiler", lambda: str(cxx))
    monkeypatch.setenv("LIVEGESTURE_CACHE", str(tmp_path / "cache"))
    why = stream_kernel.load()
    assert why is not None and "\n" not in why
    assert why.startswith("the streaming product kernel did not build: broken-c++ failed: fatal error")
    assert stream_kernel.load() == why  # tried once per process
    assert not any((tmp_path / "cache").rglob("*.so"))  # nothing half-built left in the cache


def test_no_compiler_is_one_line(monkeypatch):
    monkeypatch.setattr(stream_kernel, "_loaded", [])
    monkeypatch.setattr(stream_kernel, "cxx_compiler", lambda: None)
    assert stream_kernel.load() == "the streaming product kernel needs a C++ compiler (g++ or clang++, or $CXX)"


@needs_kernel
def test_the_build_is_cached_per_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEGESTURE_CACHE", str(tmp_path))
    first = stream_kernel._build(stream_kernel.cxx_compiler())
    mtime = os.stat(first).st_mtime_ns
    assert stream_kernel._build(stream_kernel.cxx_compiler()) == first
    assert os.stat(first).st_mtime_ns == mtime
    assert first.parent == tmp_path / "kernels"


def attention_operands(B: int, H: int, Tq: int, C: int, MH: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, T, 64, generator=g) for T in (Tq, C, C))
    mask = torch.rand(B, MH, Tq, C, generator=g) > 0.4
    mask[..., C // 2] = True  # every query sees a key (what the callers guarantee)
    return q, k, v, mask


@needs_kernel
@pytest.mark.parametrize("B,H,Tq,C,MH", [(8, 4, 1, 128, 1), (8, 4, 1, 32, 1), (2, 4, 4, 128, 1),
                                         (3, 2, 4, 40, 2), (1, 1, 1, 1, 1)])
def test_ring_attention_matches_sdpa_and_rows_are_independent(B, H, Tq, C, MH):
    q, k, v, mask = attention_operands(B, H, Tq, C, MH)
    y = stream_kernel.ring_attention(q, k, v, mask)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    for b in range(B):  # a row alone gives the same bits as in company
        assert torch.equal(stream_kernel.ring_attention(q[b:b + 1], k[b:b + 1], v[b:b + 1], mask[b:b + 1]), y[b:b + 1])
    # strided inputs (the callers pass transposed heads) are taken by value
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)
    assert torch.equal(stream_kernel.ring_attention(qt, k, v, mask), y)


@needs_kernel
def test_ring_attention_never_reads_keys_a_query_does_not_see():
    q, k, v, mask = attention_operands(2, 4, 1, 64, 1, seed=2)
    y = stream_kernel.ring_attention(q, k, v, mask)
    hidden = ~mask.expand(2, 4, 1, 64)[:, :, 0]  # (B, H, C) slots no query sees
    k2, v2 = k.clone(), v.clone()
    k2[hidden], v2[hidden] = float("nan"), float("nan")  # an unfilled ring slot may hold anything
    assert torch.equal(stream_kernel.ring_attention(q, k2, v2, mask), y)


@needs_kernel
def test_ring_attention_refuses_bad_operands():
    q, k, v, mask = attention_operands(2, 4, 1, 16, 1)
    with pytest.raises(RuntimeError, match="ring_attn"):
        stream_kernel.ring_attention(q, k, v, mask.float())
    with pytest.raises(RuntimeError, match="ring_attn"):
        stream_kernel.ring_attention(q, k[:, :, :8], v, mask)
    with pytest.raises(RuntimeError, match="ring_attn"):
        stream_kernel.ring_attention(q.double(), k, v, mask)
