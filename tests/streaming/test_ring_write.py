"""The ring write of the window attention (streaming/attention.py ``_write``): inside a compiled
program it takes another form (index_put_, so that inductor writes the slots in place instead of
copying the whole ring), which must store exactly what the eager scatter_ stores."""

from __future__ import annotations

import pytest
import torch

from livegesture.engine.compiled import compile_available
from livegesture.streaming.attention import StreamingSelfAttention


@pytest.mark.skipif(compile_available() is not None, reason=str(compile_available()))
@pytest.mark.parametrize("n", [1, 3, 8, 11])  # 11 > the capacity of 8: only the last 8 are kept
@pytest.mark.parametrize("batch", [1, 3])
def test_compiled_ring_write_stores_what_the_eager_one_stores(n, batch):
    layer = StreamingSelfAttention(dim=32, num_heads=4, window=8)
    C = layer.capacity
    g = torch.Generator().manual_seed(n * 10 + batch)
    eager, comp = layer.init_state(batch), layer.init_state(batch)
    for st in (eager, comp):  # a ring already holding something, so that a missed slot shows
        st["k"].copy_(torch.arange(st["k"].numel(), dtype=torch.float32).view_as(st["k"]))
    write = torch.compile(lambda st, k, v, t: layer._write(st, k, v, t), fullgraph=True, dynamic=False)
    for step in range(3):  # rows at different times: their slots differ, and wrap past the capacity
        k = torch.randn(batch, 4, n, 8, generator=g)
        v = torch.randn(batch, 4, n, 8, generator=g)
        t = torch.arange(n)[None] + 5 * step + 3 * torch.arange(batch)[:, None]
        layer._write(eager, k, v, t)
        write(comp, k, v, t)
        for key in ("k", "v", "pos"):
            assert torch.equal(eager[key], comp[key]), (key, step)
    assert C == 8
