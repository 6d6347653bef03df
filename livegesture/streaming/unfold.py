"""Learned time unfold: each input step becomes `factor` output steps (token -> frames)."""

from __future__ import annotations

import torch
from torch import nn

from .base import StreamingModule
from .state import StreamState


class TimeUnfold(StreamingModule):
    """``(B, T, Cin) -> (B, T*factor, Cout)``: output step ``t*factor + k`` is the k-th slice of
    ``Linear(Cin, factor*Cout)(x[t])``, so it depends on input step ``t`` only. Stateless."""

    def __init__(self, in_channels: int, out_channels: int, factor: int = 4):
        super().__init__()
        if factor < 1:
            raise ValueError("factor must be >= 1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.factor = factor
        self.proj = nn.Linear(in_channels, factor * out_channels)

    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        return {}

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        B, T, _ = x.shape
        return self.proj(x).reshape(B, T * self.factor, self.out_channels)
