"""Helpers shared by the streaming tests: chunk schedules and a stream runner."""

from __future__ import annotations

import numpy as np
import torch

DT = torch.float64
TOL = 1e-10


def schedules(n: int, seed: int = 0) -> dict[str, list[int]]:
    """Named chunk schedules whose lengths sum to `n` (zero-length chunks included)."""
    rng = np.random.default_rng(seed)
    pattern, pat = [], [3, 1, 7, 2, 0, 5, 1, 4]
    i = 0
    while sum(pattern) < n:
        pattern.append(min(pat[i % len(pat)], n - sum(pattern)))
        i += 1
    cuts = np.sort(rng.integers(0, n + 1, size=max(1, n // 4)))
    rand = np.diff(np.concatenate([[0], cuts, [n]])).tolist()  # repeated cuts give zero-length chunks
    return {"ones": [1] * n, "pattern": pattern, "random": [int(c) for c in rand], "whole": [n]}


def run_stream(module, x: torch.Tensor, schedule: list[int], state=None, **kw) -> tuple[torch.Tensor, dict]:
    """Feed `x` (B, T, C) chunk by chunk; returns the concatenated outputs and the state."""
    if state is None:
        state = module.init_state(x.shape[0], dtype=x.dtype)
    assert sum(schedule) == x.shape[1]
    outs, t = [], 0
    for c in schedule:
        outs.append(module(x[:, t:t + c], state, **kw))
        t += c
    return torch.cat(outs, dim=1), state


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).detach().abs().max()) if a.numel() else 0.0
