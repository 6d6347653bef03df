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

Two implementations compute the same thing (``impl``):

* ``"conv"``: ``nn.Conv1d`` on the ``(B, Cin, P + T)`` window. On the CPU a dilated
  ``nn.Conv1d`` at batch < 16 goes through ``aten::slow_conv_dilated2d`` (a per-sample
  im2col + GEMM loop), several times slower than needed at streaming sizes;
* ``"matmul"``: im2col by hand on the time-major ``(B, P + T, Cin)`` window: the
  ``k`` taps of every output are a strided view (``unfold`` with step ``s``, then every
  ``d``-th element), copied once to ``(B * n_out, Cin * k)`` and multiplied by the
  weight viewed as ``(Cout, Cin * k)`` in one ``addmm``. The output comes out
  ``(B, n_out, Cout)`` contiguous, with no transposes. ``groups == 1`` only.

``"auto"`` (default) picks ``"matmul"`` for ``groups == 1`` on the CPU when the call
is small, i.e. streaming sized: at most ``MATMUL_MAX_ROWS`` = 512 outputs over the
batch (``B * n_out``), or 64 when autograd records the call; ``"conv"`` otherwise
(long offline/training sequences, where ``nn.Conv1d``'s MKL-DNN path is as fast or
faster and its backward much cheaper than that of the strided views; grouped convs;
CUDA, where cuDNN handles dilation natively). Measured with one thread, dim 128,
kernel 3: forward ``B * n_out`` = 20 / 320 / 800 rows: conv/matmul 1.2-3.3x / 1.0-1.1x /
0.91-0.94x; forward + backward 16-20 rows 1.0-1.6x, 100 rows 0.87-1.13x, 320 rows
0.70-0.88x (``benchmarks/bench_streaming.py --what conv`` for the encoder's shapes).
The parameters are always ``self.conv.weight`` / ``self.conv.bias``, so state dicts
and checkpoints do not depend on the implementation.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import StreamingModule
from .state import StreamState


class CausalConv1d(StreamingModule):
    """Streaming causal ``nn.Conv1d`` on ``(B, T, C)`` tensors."""

    IMPLS = ("auto", "conv", "matmul")
    #: "auto" uses the matmul path up to this many outputs per call over the batch (B * n_out) ...
    MATMUL_MAX_ROWS = 512
    #: ... or up to this many when autograd records the call
    MATMUL_MAX_ROWS_GRAD = 64

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, impl: str = "auto"):
        super().__init__()
        if kernel_size < 1 or stride < 1 or dilation < 1:
            raise ValueError("kernel_size, stride and dilation must be >= 1")
        if impl not in self.IMPLS:
            raise ValueError(f"impl must be one of {self.IMPLS}, got {impl!r}")
        if impl == "matmul" and groups != 1:
            raise ValueError("impl='matmul' needs groups == 1")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                              dilation=dilation, groups=groups, bias=bias)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.context = (kernel_size - 1) * dilation  # P: inputs remembered between calls
        self.impl = impl  # plain attribute: may be changed after construction (benchmarks, tests)

    def extra_repr(self) -> str:
        return f"context={self.context}, impl={self.impl}"

    def _use_matmul(self, x: torch.Tensor, state: StreamState, n_out: int) -> bool:
        if self.impl != "auto":
            return self.impl == "matmul"
        if self.conv.groups != 1 or x.device.type not in ("cpu", "meta"):
            return False
        grad = torch.is_grad_enabled() and (x.requires_grad or self.conv.weight.requires_grad
                                            or state["buf"].requires_grad)
        return x.shape[0] * n_out <= (self.MATMUL_MAX_ROWS_GRAD if grad else self.MATMUL_MAX_ROWS)

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

    def _window(self, state: StreamState, z: torch.Tensor, dim: int, span: int) -> torch.Tensor:
        """The `span` inputs along `dim` of `z` that the outputs of this call read (strided conv phase)."""
        pend = state["pending"]
        p0 = int(pend[0]) if pend.numel() else 0  # host-side tensor: no device sync
        if bool((pend == p0).all()):
            start = self.stride - 1 - p0
            return z.narrow(dim, start, span)
        # sessions at different phases: per-session shifted window
        B = z.shape[0]
        idx = (self.stride - 1 - pend).to(z.device)[:, None] + torch.arange(span, device=z.device)
        shape = [B, 1, 1]
        shape[dim] = span
        idx = idx.view(shape).expand(*[z.shape[i] if i != dim else span for i in range(3)])
        return torch.gather(z, dim, idx)

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        n_out = self.num_outputs(state, x.shape[1])
        if self._use_matmul(x, state, n_out):
            return self._step_matmul(x, state, n_out)
        return self._step_conv(x, state, n_out)

    def _step_matmul(self, x: torch.Tensor, state: StreamState, n_out: int) -> torch.Tensor:
        B, T, cin = x.shape
        s, P, d, k = self.stride, self.context, self.dilation, self.kernel_size
        buf = state["buf"]
        z = torch.cat([buf.transpose(1, 2), x], dim=1) if P else x  # (B, P+T, Cin), time-major
        if n_out > 0:
            span = (n_out - 1) * s + P + 1
            win = z if s == 1 else self._window(state, z, 1, span)
            taps = win.unfold(1, P + 1, s)  # (B, n_out, Cin, P+1): view, output j's receptive field
            if d > 1:
                taps = taps[..., ::d]  # (B, n_out, Cin, k): the k taps
            cols = taps.reshape(B * n_out, cin * k)  # the one copy (im2col)
            w = self.conv.weight.reshape(self.out_channels, cin * k)  # (Cout, Cin*k), a view
            b = self.conv.bias
            y = (torch.addmm(b, cols, w.t()) if b is not None else cols @ w.t()).view(B, n_out, -1)
        else:
            y = x.new_zeros(B, 0, self.out_channels)
        if P:
            buf.copy_(z[:, z.shape[1] - P:].transpose(1, 2))
        if s > 1:
            state["pending"].add_(T).remainder_(s)
        return y

    def _step_conv(self, x: torch.Tensor, state: StreamState, n_out: int) -> torch.Tensor:
        B, T, _ = x.shape
        s, P = self.stride, self.context
        buf = state["buf"]
        z = torch.cat([buf, x.transpose(1, 2)], dim=2) if P else x.transpose(1, 2)  # (B, Cin, P+T)
        if n_out > 0:
            span = (n_out - 1) * s + P + 1
            win = z if s == 1 else self._window(state, z, 2, span)
            y = self.conv(win)  # (B, Cout, n_out)
        else:
            y = z.new_zeros(B, self.out_channels, 0)
        if P:
            buf.copy_(z[:, :, z.shape[2] - P:])
        if s > 1:
            state["pending"].add_(T).remainder_(s)
        return y.transpose(1, 2)
