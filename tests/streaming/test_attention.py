"""StreamingSelfAttention: offline == streamed, causality, sliding window, reset, save/restore, memory."""

from __future__ import annotations

import pytest
import torch

from livegesture.streaming import (StreamingSelfAttention, state_clone, state_copy_, state_nbytes,
                                   state_reset_)

from ._util import DT, TOL, maxdiff, run_stream, schedules

# (dim, heads, window, max_step, rope)
CONFIGS = [(16, 4, 1, 1, True), (16, 2, 5, 1, True), (24, 3, 8, 3, True), (16, 4, 6, 1, False)]
IDS = [f"w{w}m{m}{'rope' if r else 'norope'}" for _, _, w, m, r in CONFIGS]


def make(cfg, seed=0):
    torch.manual_seed(seed)
    dim, heads, window, max_step, rope = cfg
    return StreamingSelfAttention(dim, heads, window, max_step=max_step, rope=rope).to(DT).eval()


def reference(att: StreamingSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Dense masked attention over the whole sequence (independent of the ring cache)."""
    B, T, D = x.shape
    H, Dh = att.num_heads, att.head_dim
    pos = torch.arange(T)
    q = att.q_proj(x).view(B, T, H, Dh).transpose(1, 2)
    k = att.k_proj(x).view(B, T, H, Dh).transpose(1, 2)
    v = att.v_proj(x).view(B, T, H, Dh).transpose(1, 2)
    if att.rope is not None:
        q, k = att.rope(q, pos), att.rope(k, pos)
    d = pos[:, None] - pos[None, :]
    allowed = (d >= 0) & (d < att.window)
    scores = (q @ k.transpose(-1, -2)) / Dh ** 0.5
    scores = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return att.out_proj((scores @ v).transpose(1, 2).reshape(B, T, D))


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_offline_matches_dense_reference(cfg):
    att = make(cfg)
    x = torch.randn(3, 29, cfg[0], dtype=DT)
    assert maxdiff(att(x), reference(att, x)) <= TOL


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("sched", ["ones", "pattern", "random", "whole"])
def test_streamed_equals_offline(cfg, sched):
    att = make(cfg)
    x = torch.randn(3, 31, cfg[0], dtype=DT)
    y, state = run_stream(att, x, schedules(31, seed=2)[sched])
    assert maxdiff(y, att(x)) <= TOL
    assert state["offset"].tolist() == [31, 31, 31]


@pytest.mark.parametrize("cfg", CONFIGS[1:3], ids=IDS[1:3])
def test_causality_and_window(cfg):
    att = make(cfg)
    W = cfg[2]
    T = 24
    x = torch.randn(2, T, cfg[0], dtype=DT)
    y = att(x)
    for t in (0, 9, 23):
        x2 = x.clone()
        x2[:, t:] += torch.randn_like(x2[:, t:])
        y2 = att(x2)
        assert torch.equal(y2[:, :t], y[:, :t])
        assert not torch.allclose(y2[:, t], y[:, t])
    for p in (W, 12, 23):
        x2 = x.clone()
        x2[:, :p - W + 1] += torch.randn_like(x2[:, :p - W + 1])
        y2 = att(x2)
        assert maxdiff(y2[:, p], y[:, p]) <= TOL  # inputs older than the window are invisible
        if p - W >= 0:
            x3 = x.clone()
            x3[:, p - W + 1] += 1.0  # the oldest input inside the window is visible
            assert not torch.allclose(att(x3)[:, p], y[:, p])


def test_reset_some_sessions_and_different_offsets():
    att = make(CONFIGS[2])
    x = torch.randn(3, 40, 24, dtype=DT)
    full = att(x)
    state = att.init_state(3, dtype=DT)
    cut = 11
    a, _ = run_stream(att, x[:, :cut], [4, 0, 7], state)
    state_reset_(state, torch.tensor([False, True, False]))
    assert state["offset"].tolist() == [cut, 0, cut]
    b, _ = run_stream(att, x[:, cut:], schedules(40 - cut, seed=5)["random"], state)
    keep = torch.tensor([0, 2])
    assert maxdiff(torch.cat([a, b], 1)[keep], full[keep]) <= TOL
    assert maxdiff(b[1:2], att(x[1:2, cut:])) <= TOL


def test_save_restore_replays_identically():
    att = make(CONFIGS[2])
    x = torch.randn(3, 30, 24, dtype=DT)
    state = att.init_state(3, dtype=DT)
    run_stream(att, x[:, :13], [6, 7], state)
    saved = state_clone(state)
    y1, _ = run_stream(att, x[:, 13:], [1, 3, 0, 13], state)
    att(torch.randn(3, 5, 24, dtype=DT), state)
    state_copy_(state, saved)
    y2, _ = run_stream(att, x[:, 13:], [1, 3, 0, 13], state)
    assert torch.equal(y1, y2)


@pytest.mark.parametrize("sched", ["ones", "random"])
def test_long_stream_constant_memory(sched):
    att = make(CONFIGS[1])  # window 5
    T = 20 * 5 + 7
    x = torch.randn(2, T, 16, dtype=DT)
    state = att.init_state(2, dtype=DT)
    nbytes = state_nbytes(state)
    outs, t = [], 0
    for c in schedules(T, seed=4)[sched]:
        outs.append(att(x[:, t:t + c], state))
        t += c
        assert state_nbytes(state) == nbytes
    assert maxdiff(torch.cat(outs, 1), att(x)) <= TOL


def test_large_absolute_positions():
    """A session deep into an hour-long stream behaves like a fresh one (RoPE is relative)."""
    att = make(CONFIGS[1])
    x = torch.randn(1, 12, 16, dtype=DT)
    state = att.init_state(1, dtype=DT)
    state["offset"].fill_(100_000)
    assert maxdiff(att(x, state), att(x)) <= 1e-9


def test_gradients_offline_and_through_two_chunks():
    att = make(CONFIGS[2]).float().train()
    x = torch.randn(2, 10, 24, requires_grad=True)
    att(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and att.k_proj.weight.grad is not None
    state = att.init_state(2)
    x.grad = None
    (att(x[:, :4], state).sum() + att(x[:, 4:], state).sum()).backward()
    assert torch.isfinite(x.grad).all()


def test_long_calls_are_processed_in_blocks():
    att = make(CONFIGS[2])
    x = torch.randn(2, 50, 24, dtype=DT)
    y = att(x)
    att.block_size = 7
    assert maxdiff(att(x), y) <= TOL
    assert maxdiff(reference(att, x), y) <= TOL
