"""Causal 1D convolution as a streaming module (any chunk length, any stride).

Semantics (offline and streaming alike): with ``P = (kernel_size - 1) * dilation``
and stride ``s``, output ``j`` is

    y[j] = bias + sum_i W[:, :, i] @ x[j*s + s - 1 - P + i*dilation]

with ``x[<0] = 0`` (left zero padding). Output ``j`` therefore depends only on
inputs ``<= j*s + s - 1`` (the last input of its stride block) and is emitted by
the call in which that input arrives. After ``n`` inputs exactly ``n // s``
outputs have been emitted.

State (batch first, all zeros = fresh):

* ``buf`` ``(B, Cin, P)``: the last ``P`` inputs (zeros = the left padding);
* ``pending`` ``(B,)`` int64, only when ``stride > 1``: inputs consumed modulo
  ``s``. It is kept on the **CPU** whatever the device of the rest, so the step can
  decide how many outputs a call emits without reading device memory (no host
  sync). When a call's length is not a multiple of the stride, all sessions of the
  batch must be at the same phase (same ``pending``), otherwise they would emit
  different numbers of outputs: that raises ``ValueError``. Chunks whose length is
  a multiple of the stride work for any mix of phases.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import StreamingModule
from .state import StreamState


class CausalConv1d(StreamingModule):
    """Streaming causal ``nn.Conv1d`` on ``(B, T, C)`` tensors."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        if kernel_size < 1 or stride < 1 or dilation < 1:
            raise ValueError("kernel_size, stride and dilation must be >= 1")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                              dilation=dilation, groups=groups, bias=bias)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.context = (kernel_size - 1) * dilation  # P: inputs remembered between calls

    def extra_repr(self) -> str:
        return f"context={self.context}"

    def init_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        device, dtype = self._dd(device, dtype)
        state: StreamState = {"buf": torch.zeros(batch_size, self.in_channels, self.context,
                                                 device=device, dtype=dtype)}
        if self.stride > 1:
            state["pending"] = torch.zeros(batch_size, dtype=torch.long)  # host side on purpose
        return state

    def num_outputs(self, state: StreamState, length: int) -> int:
        """How many outputs a call with `length` new inputs emits (reads only host memory)."""
        s = self.stride
        if s == 1:
            return length
        if length % s == 0:
            return length // s
        counts = torch.div(state["pending"] + length, s, rounding_mode="floor")
        n = int(counts[0]) if counts.numel() else 0
        if counts.numel() and not bool((counts == n).all()):
            raise ValueError(
                f"sessions at different stride phases ({state['pending']}) would emit different "
                f"numbers of outputs for a chunk of {length} (stride {s}); use chunk lengths that "
                "are multiples of the stride or step these sessions separately")
        return n

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        B, T, _ = x.shape
        s, P = self.stride, self.context
        buf = state["buf"]
        n_out = self.num_outputs(state, T)
        z = torch.cat([buf, x.transpose(1, 2)], dim=2) if P else x.transpose(1, 2)  # (B, Cin, P+T)
        if n_out > 0:
            span = (n_out - 1) * s + P + 1
            if s == 1:
                win = z
            else:
                pend = state["pending"]
                p0 = int(pend[0]) if pend.numel() else 0
                if bool((pend == p0).all()):
                    start = s - 1 - p0
                    win = z[:, :, start:start + span]
                else:  # sessions at different phases: per-session shifted window
                    start = (s - 1 - pend).to(z.device)
                    idx = start[:, None] + torch.arange(span, device=z.device)
                    win = torch.gather(z, 2, idx[:, None, :].expand(B, z.shape[1], span))
            y = self.conv(win)  # (B, Cout, n_out)
        else:
            y = z.new_zeros(B, self.out_channels, 0)
        if P:
            buf.copy_(z[:, :, z.shape[2] - P:])
        if s > 1:
            state["pending"].add_(T).remainder_(s)
        return y.transpose(1, 2)
