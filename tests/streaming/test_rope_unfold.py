"""RotaryEmbedding (relative, exact at large positions) and TimeUnfold (token -> frames)."""

from __future__ import annotations

import pytest
import torch

from livegesture.streaming import RotaryEmbedding, TimeUnfold

from ._util import DT, TOL, maxdiff, run_stream, schedules


def scores(rope, q, k, pq, pk):
    return rope(q, pq) @ rope(k, pk).transpose(-1, -2)


def test_rope_is_relative_and_norm_preserving():
    torch.manual_seed(0)
    rope = RotaryEmbedding(8)
    q, k = torch.randn(2, 3, 5, 8, dtype=DT), torch.randn(2, 3, 4, 8, dtype=DT)
    pq, pk = torch.tensor([[3, 4, 5, 6, 7]] * 2), torch.tensor([[0, 1, 2, 3]] * 2)
    base = scores(rope, q, k, pq, pk)
    for shift in (1, 977, 100_000):
        assert maxdiff(scores(rope, q, k, pq + shift, pk + shift), base) <= 1e-9
    assert maxdiff(rope(q, pq).norm(dim=-1), q.norm(dim=-1)) <= TOL
    assert maxdiff(rope(q, torch.zeros(2, 5)), q) == 0.0


def test_rope_float32_large_positions_and_position_forms():
    torch.manual_seed(0)
    rope = RotaryEmbedding(16)
    q, k = torch.randn(1, 2, 6, 16), torch.randn(1, 2, 6, 16)
    p = torch.arange(6)[None]
    ref = scores(rope, q.double(), k.double(), p, p)
    far = scores(rope, q, k, p + 100_000, p + 100_000)  # float32 tensors, float64 angles
    assert far.dtype == torch.float32
    assert maxdiff(far.double(), ref) <= 1e-4
    assert torch.equal(rope(q, p), rope(q, p.float()))
    assert torch.equal(rope(q, p), rope(q, p[0]))  # (T,) broadcasts over the batch
    with pytest.raises(ValueError):
        RotaryEmbedding(7)


@pytest.mark.parametrize("factor", [1, 4])
@pytest.mark.parametrize("sched", ["ones", "random", "whole"])
def test_time_unfold(factor, sched):
    torch.manual_seed(0)
    m = TimeUnfold(6, 5, factor).to(DT)
    x = torch.randn(3, 13, 6, dtype=DT)
    y = m(x)
    assert y.shape == (3, 13 * factor, 5)
    assert m.init_state(3) == {}
    ys, _ = run_stream(m, x, schedules(13, seed=1)[sched])
    assert maxdiff(ys, y) <= TOL
    x2 = x.clone()
    x2[:, 7] += 1.0  # token 7 changes frames 7*factor .. 7*factor + factor - 1 only
    d = (m(x2) - y).abs().amax(dim=(0, 2))
    changed = (d > 0).nonzero().flatten().tolist()
    assert changed == list(range(7 * factor, 8 * factor))
