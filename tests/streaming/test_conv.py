"""CausalConv1d: semantics, offline == streamed for any schedule, causality, reset/save/restore."""

from __future__ import annotations

import pytest
import torch

from livegesture.streaming import CausalConv1d, state_clone, state_copy_, state_nbytes, state_reset_

from ._util import DT, TOL, maxdiff, run_stream, schedules

# (in, out, kernel, stride, dilation, groups)
CONFIGS = [(3, 5, 3, 1, 1, 1), (4, 6, 3, 1, 4, 2), (3, 4, 5, 2, 2, 1), (4, 4, 4, 4, 1, 4),
           (2, 3, 1, 3, 1, 1), (3, 2, 2, 4, 3, 1), (2, 2, 7, 3, 1, 1)]
IDS = [f"k{k}s{s}d{d}g{g}" for _, _, k, s, d, g in CONFIGS]


def make(cfg, seed=0):
    torch.manual_seed(seed)
    cin, cout, k, s, d, g = cfg
    return CausalConv1d(cin, cout, k, stride=s, dilation=d, groups=g).to(DT)


def reference(conv: CausalConv1d, x: torch.Tensor) -> torch.Tensor:
    """Naive definition: y[j] = b + sum_i W_i x[j*s + s - 1 - P + i*d], x[<0] = 0."""
    w, b = conv.conv.weight, conv.conv.bias
    s, d, P, g = conv.stride, conv.dilation, conv.context, conv.conv.groups
    B, T, cin = x.shape
    cout = w.shape[0]
    ys = []
    for j in range(T // s):
        acc = b.expand(B, cout).clone() if b is not None else x.new_zeros(B, cout)
        for i in range(conv.kernel_size):
            t = j * s + s - 1 - P + i * d
            if t < 0:
                continue
            xg = x[:, t].view(B, g, cin // g)
            wg = w[:, :, i].view(g, cout // g, cin // g)
            acc = acc + torch.einsum("bgc,goc->bgo", xg, wg).reshape(B, cout)
        ys.append(acc)
    return torch.stack(ys, 1) if ys else x.new_zeros(B, 0, cout)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_offline_matches_definition(cfg):
    conv = make(cfg)
    for T in (0, 1, 5, 23):
        x = torch.randn(3, T, cfg[0], dtype=DT)
        y = conv(x)
        assert y.shape == (3, T // conv.stride, cfg[1])
        assert maxdiff(y, reference(conv, x)) <= TOL


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("sched", ["ones", "pattern", "random", "whole"])
def test_streamed_equals_offline(cfg, sched):
    conv = make(cfg)
    x = torch.randn(3, 37, cfg[0], dtype=DT)
    y_off = conv(x)
    schedule = schedules(37, seed=1)[sched]
    state = conv.init_state(3, dtype=DT)
    outs, consumed = [], 0
    for c in schedule:
        y = conv(x[:, consumed:consumed + c], state)
        # each call emits exactly the outputs whose last input just arrived
        assert y.shape[1] == (consumed + c) // conv.stride - consumed // conv.stride
        outs.append(y)
        consumed += c
    assert maxdiff(torch.cat(outs, 1), y_off) <= TOL


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_causality(cfg):
    conv = make(cfg)
    T = 30
    x = torch.randn(2, T, cfg[0], dtype=DT)
    y = conv(x)
    s = conv.stride
    for t in (0, 7, 13, 29):
        x2 = x.clone()
        x2[:, t:] = torch.randn_like(x2[:, t:])
        y2 = conv(x2)
        ready = t // s  # outputs j with j*s + s - 1 < t
        assert torch.equal(y2[:, :ready], y[:, :ready])
        if (t + 1) % s == 0 and ready < y.shape[1]:
            # the output whose last input is t is emitted with it and does depend on it
            assert not torch.allclose(y2[:, ready], y[:, ready])


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2], CONFIGS[3]], ids=[IDS[0], IDS[2], IDS[3]])
def test_reset_some_sessions(cfg):
    conv = make(cfg)
    s = conv.stride
    x = torch.randn(3, 41, cfg[0], dtype=DT)
    full = conv(x)
    state = conv.init_state(3, dtype=DT)
    cut = 13  # not a multiple of the stride: sessions end up at different phases
    a, _ = run_stream(conv, x[:, :cut], [5, 0, 8], state)
    state_reset_(state, torch.tensor([False, True, False]))
    rest = [s * 2, 0, s, s * 3, 41 - cut - 6 * s]
    rest[-1] = 41 - cut - sum(rest[:-1])
    b, _ = run_stream(conv, x[:, cut:], rest, state)
    keep = torch.tensor([0, 2])
    assert maxdiff(torch.cat([a, b], 1)[keep], full[keep]) <= TOL
    fresh = conv(x[1:2, cut:])
    assert maxdiff(b[1:2, :fresh.shape[1]], fresh) <= TOL
    if s > 1 and cut % s:
        with pytest.raises(ValueError, match="phase"):
            conv(x[:, :s - 1], state)  # phases differ: one session would emit an output, another not


@pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[2]], ids=[IDS[1], IDS[2]])
def test_save_restore_replays_identically(cfg):
    conv = make(cfg)
    x = torch.randn(3, 40, cfg[0], dtype=DT)
    state = conv.init_state(3, dtype=DT)
    run_stream(conv, x[:, :17], [4, 13], state)
    saved = state_clone(state)
    y1, _ = run_stream(conv, x[:, 17:], [1, 6, 0, 16], state)
    conv(torch.randn(3, 9, cfg[0], dtype=DT), state)  # wander off
    state_copy_(state, saved)
    y2, _ = run_stream(conv, x[:, 17:], [1, 6, 0, 16], state)
    assert torch.equal(y1, y2)


def test_long_stream_constant_memory():
    conv = make(CONFIGS[2])
    x = torch.randn(2, 400, 3, dtype=DT)  # >> 20 x the receptive field
    state = conv.init_state(2, dtype=DT)
    nbytes = state_nbytes(state)
    y, state = run_stream(conv, x, schedules(400, seed=3)["random"], state)
    assert state_nbytes(state) == nbytes
    assert maxdiff(y, conv(x)) <= TOL


def test_gradients_flow_offline():
    conv = make(CONFIGS[2]).float()
    x = torch.randn(2, 20, 3, requires_grad=True)
    conv(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert conv.conv.weight.grad is not None


def test_pending_is_host_side_and_select_works():
    from livegesture.streaming import state_assign_, state_select
    conv = make(CONFIGS[2])
    state = conv.init_state(3, dtype=DT)
    conv(torch.randn(3, 5, 3, dtype=DT), state)
    assert state["pending"].device.type == "cpu" and state["pending"].tolist() == [1, 1, 1]
    sub = state_select(state, [2, 0])
    assert sub["buf"].shape[0] == 2
    state_assign_(state, [1], state_select(conv.init_state(1, dtype=DT), [0]))
    assert state["pending"].tolist() == [1, 0, 1]


# --- the two implementations (nn.Conv1d vs im2col + one addmm) --------------------------------------------

def _pair(cfg, bias=True, seed=0):
    """The same layer twice, one per implementation (identical parameters)."""
    cin, cout, k, s, d, g = cfg
    torch.manual_seed(seed)
    a = CausalConv1d(cin, cout, k, stride=s, dilation=d, groups=g, bias=bias, impl="conv").to(DT)
    b = CausalConv1d(cin, cout, k, stride=s, dilation=d, groups=g, bias=bias, impl="matmul").to(DT)
    b.load_state_dict(a.state_dict())
    return a, b


G1 = [c for c in CONFIGS if c[5] == 1] + [(5, 7, 3, 1, 8, 1), (6, 4, 2, 3, 5, 1), (4, 4, 1, 1, 1, 1)]


@pytest.mark.parametrize("cfg", G1, ids=[f"k{k}s{s}d{d}" for _, _, k, s, d, _ in G1])
@pytest.mark.parametrize("sched", ["ones", "pattern", "random", "whole"])
def test_matmul_path_equals_conv_path(cfg, sched):
    """Streamed with any schedule, both implementations give the same outputs and states (float64)."""
    a, b = _pair(cfg, bias=sched != "pattern")
    x = torch.randn(3, 37, cfg[0], dtype=DT)
    sa, sb = a.init_state(3, dtype=DT), b.init_state(3, dtype=DT)
    t = 0
    for c in schedules(37, seed=2)[sched]:
        ya, yb = a(x[:, t:t + c], sa), b(x[:, t:t + c], sb)
        assert maxdiff(ya, yb) <= 1e-12
        assert maxdiff(sa["buf"], sb["buf"]) == 0.0
        t += c
    if "pending" in sa:
        assert torch.equal(sa["pending"], sb["pending"])


def _conv1d_reference(x: torch.Tensor, weight, bias, k, s, d, g) -> torch.Tensor:
    """F.conv1d on the left-zero-padded input, first s - 1 inputs of the padded signal skipped."""
    P = (k - 1) * d
    xp = torch.nn.functional.pad(x.transpose(1, 2), (P, 0))[:, :, s - 1:]
    return torch.nn.functional.conv1d(xp, weight, bias, stride=s, dilation=d, groups=g).transpose(1, 2)


@pytest.mark.parametrize("k, d, s, g", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 8, 1, 1), (2, 5, 1, 1), (5, 3, 2, 1),
                                        (4, 2, 3, 1), (1, 1, 2, 1), (7, 1, 4, 1), (3, 4, 1, 2), (3, 2, 2, 4)])
@pytest.mark.parametrize("impl", ["auto", "matmul", "conv"])
def test_random_against_F_conv1d(k, d, s, g, impl):
    """Random sizes and chunk schedules against F.conv1d (mixed phases: test_reset_some_sessions)."""
    if impl == "matmul" and g != 1:
        pytest.skip("matmul path is groups == 1 only")
    rng = torch.Generator().manual_seed(k * 1000 + d * 100 + s * 10 + g)
    cin, cout = 4 * g, 3 * g
    torch.manual_seed(k + d + s + g)
    conv = CausalConv1d(cin, cout, k, stride=s, dilation=d, groups=g, impl=impl).to(DT)
    for trial in range(3):
        B, T = 1 + trial, int(torch.randint(1, 60, (1,), generator=rng))
        x = torch.randn(B, T, cin, dtype=DT, generator=rng)
        ref = _conv1d_reference(x, conv.conv.weight, conv.conv.bias, k, s, d, g)
        assert maxdiff(conv(x), ref) <= 1e-12
        # random schedule; chunks are multiples of the stride except possibly the last (in-phase batch)
        sched, left = [], T
        while left:
            c = min(left, int(torch.randint(0, 3 * s + 2, (1,), generator=rng)))
            sched.append(c)
            left -= c
        y, _ = run_stream(conv, x, sched)
        assert maxdiff(y, ref) <= 1e-12


@pytest.mark.parametrize("cfg", [(3, 5, 3, 1, 4, 1), (3, 4, 5, 2, 2, 1)], ids=["k3s1d4", "k5s2d2"])
def test_matmul_path_gradients_equal_conv_path(cfg):
    a, b = _pair(cfg)
    x = torch.randn(2, 23, cfg[0], dtype=DT)
    grads = []
    for m in (a, b):
        xi = x.clone().requires_grad_(True)
        state = m.init_state(2, dtype=DT)
        y, _ = run_stream(m, xi, [5, 1, 0, 9, 8], state)
        (y.square().sum() + state["buf"].sum()).backward()  # through the outputs and the carried state
        grads.append([xi.grad, m.conv.weight.grad, m.conv.bias.grad])
    for ga, gb in zip(*grads):
        assert maxdiff(ga, gb) <= 1e-12
    assert torch.autograd.gradcheck(lambda xx: b(xx), (x[:1, :9].clone().requires_grad_(True),))


def test_impl_choice_and_checkpoint_compatibility():
    x = torch.randn(1, 4, 3)
    m = CausalConv1d(3, 4, 3, dilation=2)
    st = m.init_state(1)
    with torch.no_grad():
        assert m._use_matmul(x, st, 20) and m._use_matmul(x, st, 512)  # CPU, groups 1, streaming sized
        assert not m._use_matmul(x, st, 513)  # long offline call: nn.Conv1d
    assert m._use_matmul(x, st, 64) and not m._use_matmul(x, st, 65)  # autograd records: lower bound
    m.conv.requires_grad_(False)
    assert m._use_matmul(x, st, 512)
    g = CausalConv1d(4, 4, 3, dilation=2, groups=2)
    assert not g._use_matmul(torch.randn(1, 4, 4), g.init_state(1), 1)
    assert not CausalConv1d(3, 4, 3, impl="conv")._use_matmul(x, st, 1)
    assert CausalConv1d(3, 4, 3, impl="matmul")._use_matmul(x, st, 10 ** 6)
    with pytest.raises(ValueError):
        CausalConv1d(3, 4, 3, impl="fft")
    with pytest.raises(ValueError):
        CausalConv1d(4, 4, 3, groups=2, impl="matmul")
    a, b = _pair((3, 4, 3, 2, 2, 1))
    assert list(a.state_dict()) == list(b.state_dict()) == ["conv.weight", "conv.bias"]
    assert a.init_state(2, dtype=DT).keys() == b.init_state(2, dtype=DT).keys()
    for u, v in zip(a.init_state(2, dtype=DT).values(), b.init_state(2, dtype=DT).values()):
        assert u.shape == v.shape and u.device == v.device
    # float32 too (MKL-DNN may serve nn.Conv1d there): same to rounding
    a32, b32 = a.float(), b.float()
    x32 = torch.randn(2, 30, 3)
    assert maxdiff(a32(x32), b32(x32)) <= 1e-5
