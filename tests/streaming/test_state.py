"""state_detach_: truncated BPTT across streamed calls (values kept, history cut, in place)."""

from __future__ import annotations

import torch
from torch import nn

from livegesture.streaming import (CausalConv1d, StreamingModule, StreamingSelfAttention, state_clone,
                                   state_detach_)

from ._util import DT, maxdiff


class _Stack(StreamingModule):
    """Nested state: dilated conv -> strided conv -> attention."""

    def __init__(self):
        super().__init__()
        self.a = CausalConv1d(3, 8, 3, dilation=4)
        self.b = CausalConv1d(8, 8, 3, stride=2, dilation=2)
        self.att = StreamingSelfAttention(8, 2, 5, max_step=4)
        self.head = nn.Linear(8, 1)

    def step(self, x, state):
        return self.head(self.att(self.b(self.a(x, state["a"]), state["b"]), state["att"]))


def _leaves(state):
    for v in state.values():
        yield from (_leaves(v) if isinstance(v, dict) else [v])


def test_state_detach_truncates_backprop_in_place():
    torch.manual_seed(0)
    m = _Stack().to(DT)
    x1 = torch.randn(2, 8, 3, dtype=DT, requires_grad=True)
    x2 = torch.randn(2, 8, 3, dtype=DT)
    state = m.init_state(2, dtype=DT)
    m(x1, state)
    assert any(v.requires_grad for v in _leaves(state))  # the carried state holds chunk 1's graph
    ptrs = [v.data_ptr() for v in _leaves(state)]
    values = state_clone(state)
    assert state_detach_(state) is state
    assert [v.data_ptr() for v in _leaves(state)] == ptrs  # same tensors, same storage
    assert not any(v.requires_grad or v.grad_fn is not None for v in _leaves(state))
    assert all(torch.equal(u, v) for u, v in zip(_leaves(state), _leaves(values)))
    ref_state = state_clone(state)

    m.zero_grad()
    m(x2, state).square().sum().backward()
    assert x1.grad is None  # nothing flows back into the chunk before the cut
    g_cut = [p.grad.clone() for p in m.parameters()]
    # same gradients as starting chunk 2 from a constant copy of the carried state
    m.zero_grad()
    m(x2, ref_state).square().sum().backward()
    for a, b in zip(g_cut, (p.grad for p in m.parameters())):
        assert maxdiff(a, b) == 0.0


def test_without_detach_gradient_reaches_previous_chunk():
    torch.manual_seed(0)
    m = _Stack().to(DT)
    x1 = torch.randn(2, 8, 3, dtype=DT, requires_grad=True)
    state = m.init_state(2, dtype=DT)
    m(x1, state)
    m(torch.randn(2, 8, 3, dtype=DT), state).square().sum().backward()
    assert x1.grad is not None and x1.grad.abs().sum() > 0


def test_state_detach_leaves_plain_inference_and_view_tensors():
    base = torch.randn(2, 6, requires_grad=True) * 1.0  # non-leaf with history
    with torch.inference_mode():
        inf = torch.zeros(2, 3)
    view = base[:, :3]
    state = {"plain": torch.zeros(2, 4), "inf": inf, "n": {"view": view, "own": base},
             "count": torch.zeros(2, dtype=torch.long)}
    state_detach_(state)
    assert state["inf"] is inf and state["n"]["own"] is base and not base.requires_grad
    assert not state["n"]["view"].requires_grad
    assert state["n"]["view"].data_ptr() == view.data_ptr()
