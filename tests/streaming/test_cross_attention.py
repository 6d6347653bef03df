"""StreamingCrossAttention: query stream (7.5 Hz) over a key stream (30 Hz) with its own time axis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livegesture.streaming import StreamingCrossAttention, state_clone, state_copy_, state_nbytes, state_reset_

from ._util import DT, TOL, maxdiff

# (dim, kv_dim, heads, window, query_stride, query_offset, rope)
CONFIGS = [(16, 8, 4, 12, 4, 3, True), (16, 16, 2, 5, 1, 0, True), (12, 6, 3, 9, 4, 3, False),
           (16, 8, 2, 3, 2, 1, True)]
IDS = [f"w{c[3]}s{c[4]}o{c[5]}{'rope' if c[6] else 'norope'}" for c in CONFIGS]


def make(cfg, max_kv_step=1, seed=0):
    torch.manual_seed(seed)
    dim, kv_dim, heads, window, stride, off, rope = cfg
    return StreamingCrossAttention(dim, kv_dim, heads, window, max_kv_step, query_stride=stride,
                                   query_offset=off, rope=rope).to(DT).eval()


def reference(att, q_in, kv):
    """Dense masked attention (independent of the ring cache)."""
    B, Tq, D = q_in.shape
    Tk = kv.shape[1]
    H, Dh = att.num_heads, att.head_dim
    qt = torch.arange(Tq) * att.query_stride + att.query_offset
    kt = torch.arange(Tk)
    q = att.q_proj(q_in).view(B, Tq, H, Dh).transpose(1, 2)
    k = att.k_proj(kv).view(B, Tk, H, Dh).transpose(1, 2)
    v = att.v_proj(kv).view(B, Tk, H, Dh).transpose(1, 2)
    if att.rope is not None:
        q, k = att.rope(q, qt), att.rope(k, kt)
    d = qt[:, None] - kt[None, :]
    allowed = (d >= 0) & (d < att.window)
    s = ((q @ k.transpose(-1, -2)) / Dh ** 0.5).masked_fill(~allowed, float("-inf")).softmax(-1)
    out = att.out_proj((s.nan_to_num(0.0) @ v).transpose(1, 2).reshape(B, Tq, D))
    return out * allowed.any(-1)[None, :, None]


def key_schedule(n_keys, kind, rng):
    if kind == "ones":
        return [1] * n_keys
    if kind == "whole":
        return [n_keys]
    if kind == "tokens":
        return [4] * (n_keys // 4) + ([n_keys % 4] if n_keys % 4 else [])
    out = []
    while sum(out) < n_keys:
        out.append(int(min(rng.integers(0, 9), n_keys - sum(out))))
    return out


def stream(att, q_in, kv, ksched, lag=0, state=None):
    """Push keys by `ksched`; after each push emit the ready queries except the last `lag` ones."""
    B, Nq, _ = q_in.shape
    if state is None:
        state = att.init_state(B, dtype=DT)
    outs, nk, nq, ahead = [], 0, 0, 0
    for i, c in enumerate(ksched):
        nk += c
        last = i == len(ksched) - 1
        ready = 0 if nk <= att.query_offset else min(Nq, (nk - 1 - att.query_offset) // att.query_stride + 1)
        upto = ready if last else max(nq, ready - lag)
        outs.append(att(q_in[:, nq:upto], state, kv=kv[:, nk - c:nk]))
        nq = upto
        t_next = nq * att.query_stride + att.query_offset
        ahead = max(ahead, nk - t_next)
    if nq < Nq:
        outs.append(att(q_in[:, nq:], state, kv=kv[:, :0]))
    return torch.cat(outs, 1), state, ahead


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_offline_matches_reference(cfg):
    att = make(cfg)
    q_in = torch.randn(3, 9, cfg[0], dtype=DT)
    kv = torch.randn(3, 9 * cfg[4] + cfg[5] + 2, cfg[1], dtype=DT)
    assert maxdiff(att(q_in, kv=kv), reference(att, q_in, kv)) <= TOL


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("kind", ["ones", "tokens", "random", "whole"])
@pytest.mark.parametrize("lag", [0, 2])
def test_streamed_equals_offline(cfg, kind, lag):
    rng = np.random.default_rng(7)
    Nq = 11
    n_keys = Nq * cfg[4] + cfg[5]
    q_in = torch.randn(3, Nq, cfg[0], dtype=DT)
    kv = torch.randn(3, n_keys, cfg[1], dtype=DT)
    ksched = key_schedule(n_keys, kind, rng)
    # size the ring from how far the key stream runs ahead of the next query
    _, _, ahead = stream(make(cfg, max_kv_step=n_keys + 1), q_in, kv, ksched, lag)
    att = make(cfg, max_kv_step=max(1, ahead))
    y, state, _ = stream(att, q_in, kv, ksched, lag)
    assert maxdiff(y, att(q_in, kv=kv)) <= TOL
    assert state["q_offset"].tolist() == [Nq] * 3 and state["k_offset"].tolist() == [n_keys] * 3


def test_ring_too_small_loses_keys():
    """Sanity check of the capacity rule: keys far ahead of the next query fall out of a small ring."""
    cfg = CONFIGS[0]
    q_in = torch.randn(1, 6, 16, dtype=DT)
    kv = torch.randn(1, 6 * 4 + 3, 8, dtype=DT)
    att = make(cfg, max_kv_step=1)
    state = att.init_state(1, dtype=DT)
    att(q_in[:, :0], state, kv=kv)  # all keys first, queries afterwards
    assert maxdiff(att(q_in, state, kv=kv[:, :0]), att(q_in, kv=kv)) > 1e-3
    big = make(cfg, max_kv_step=kv.shape[1])
    state = big.init_state(1, dtype=DT)
    big(q_in[:, :0], state, kv=kv)
    assert maxdiff(big(q_in, state, kv=kv[:, :0]), big(q_in, kv=kv)) <= TOL


def test_queries_before_keys_give_zeros_not_nan():
    att = make(CONFIGS[0], max_kv_step=8)
    state = att.init_state(2, dtype=DT)
    q_in = torch.randn(2, 3, 16, dtype=DT)
    y = att(q_in[:, :1], state)  # no key pushed yet
    assert torch.equal(y, torch.zeros_like(y))
    kv = torch.randn(2, 12, 8, dtype=DT)
    y = att(q_in[:, 1:], state, kv=kv[:, :2])  # query 1 (time 7) sees keys 0,1; query 2 (time 11) too
    assert torch.isfinite(y).all() and y.abs().min() > 0
    y0 = att(q_in[:, :0], kv=kv[:, :0])
    assert y0.shape == (2, 0, 16)


@pytest.mark.parametrize("cfg", CONFIGS[:2], ids=IDS[:2])
def test_causality_and_window(cfg):
    att = make(cfg)
    stride, off, W = cfg[4], cfg[5], cfg[3]
    Nq = 10
    q_in = torch.randn(2, Nq, cfg[0], dtype=DT)
    kv = torch.randn(2, Nq * stride + off + 3, cfg[1], dtype=DT)
    y = att(q_in, kv=kv)
    for n in (0, 4, 9):
        t = n * stride + off
        kv2 = kv.clone()
        kv2[:, t + 1:] += torch.randn_like(kv2[:, t + 1:])  # keys after query n's time
        y2 = att(q_in, kv=kv2)
        assert torch.equal(y2[:, :n + 1], y[:, :n + 1])
        kv3 = kv.clone()
        kv3[:, t] += 1.0  # the key at exactly its time is visible
        assert not torch.allclose(att(q_in, kv=kv3)[:, n], y[:, n])
        if t - W + 1 > 0:
            kv4 = kv.clone()
            kv4[:, :t - W + 1] += torch.randn_like(kv4[:, :t - W + 1])  # keys older than the window
            assert maxdiff(att(q_in, kv=kv4)[:, n], y[:, n]) <= TOL


def test_reset_save_restore_and_memory():
    cfg = CONFIGS[0]
    att = make(cfg, max_kv_step=4)
    Nq = 60  # keys: 243 >> 20 x window 12
    q_in = torch.randn(3, Nq, 16, dtype=DT)
    kv = torch.randn(3, Nq * 4 + 3, 8, dtype=DT)
    full = att(q_in, kv=kv)
    state = att.init_state(3, dtype=DT)
    nbytes = state_nbytes(state)
    outs = []
    # token-by-token: push the 4 frames of token n (the first push also has the 3 offset frames), query n
    for n in range(Nq):
        lo, hi = (0, 7) if n == 0 else (4 * n + 3, 4 * n + 7)
        outs.append(att(q_in[:, n:n + 1], state, kv=kv[:, lo:hi]))
        assert state_nbytes(state) == nbytes
        if n == 20:
            saved = state_clone(state)
        if n == 30:
            state_reset_(state, torch.tensor([False, False, True]))
    y = torch.cat(outs, 1)
    assert maxdiff(y[:2], full[:2]) <= TOL
    # session 2 restarted at token 31 with keys from frame 4*31+3 on: like a fresh session fed those
    q_late, kv_late = q_in[2:, 31:], kv[2:, 31 * 4 + 3:]
    fresh = make(cfg, max_kv_step=4)
    # a fresh session's query n has time 4n+3; feed it the late keys shifted to its own key axis
    s2 = fresh.init_state(1, dtype=DT)
    ref = []
    for n in range(Nq - 31):
        lo, hi = (0, 4) if n == 0 else (4 * n, 4 * n + 4)
        ref.append(fresh(q_late[:, n:n + 1], s2, kv=kv_late[:, lo:hi]))
    assert maxdiff(y[2:, 31:], torch.cat(ref, 1)) <= TOL
    # save/restore replays identically
    state_copy_(state, saved)
    replay = [att(q_in[:, n:n + 1], state, kv=kv[:, 4 * n + 3:4 * n + 7]) for n in range(21, 30)]
    assert torch.equal(torch.cat(replay, 1), y[:, 21:30])
