"""Weight-only int8 matrix products for the model step and the decoders (docs/design.md §6, "Precision").

Why: at batch 1 the KV-cached step multiplies a few rows by every weight of the model, so it
streams ~117 MB (base, float32) from memory per token, and the float32 GEMM kernels read those
weights at a fraction of the memory bandwidth at 2-4 rows. PyTorch's weight-only int8 kernel
(``torch._weight_int8pack_mm``: int8 weights (out, in), one scale per output channel, bfloat16
rows) reads a quarter of the bytes and was measured 2-5x faster per product on the step's shapes.
Where its rows are independent of one another (:func:`int8_rows_independent` probes this CPU; it
held on the AVX2 machine it was built on and on an AVX-512 AMD EPYC), the engine's bit-identity
across front ends holds inside the int8 path too; on a CPU where the kernel took another code path
for more rows, the front ends would agree to bfloat16 rounding only.

The kernel needs the input width to be a multiple of 16: on an AVX-512 CPU (seen: AMD EPYC Zen 4,
torch 2.13.0) other widths gave wrong results or a segmentation fault, so weights are stored with
their input width padded by zero columns to a multiple of :data:`K_MULTIPLE` and rows padded to
match (zeros add nothing, so the products are unchanged).

What it costs: the weights are rounded to 8 bits per output channel, the rows of each product to
bfloat16 and its result to bfloat16 (accumulation is float32); residual streams, norms, attention,
softmax and sampling stay float32. ``benchmarks/precision_agreement.py`` measures the token
agreement with float32 and the evaluation figures with it. Float32 stays the default and is what
every exactness test uses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

__all__ = ["K_MULTIPLE", "PRECISIONS", "Int8Linear", "check_precision", "int8_available",
           "int8_rows_independent", "pad_width", "quantize_linear"]

#: inference precisions of the step's matrix products
PRECISIONS = ("float32", "int8")

#: the int8 kernel's input width must be a multiple of this (see the module doc)
K_MULTIPLE = 16


def check_precision(precision: str) -> str:
    from ..errors import LiveGestureError

    if precision not in PRECISIONS:
        raise LiveGestureError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    return precision


def int8_available() -> bool:
    """Whether this torch build has the weight-only int8 kernel."""
    return hasattr(torch, "_weight_int8pack_mm")


@dataclass(frozen=True)
class Int8Linear:
    """``x @ W.T`` with W stored as int8 (out, in) and a bfloat16 scale per output row (no bias:
    callers add theirs in float32)."""

    weight: torch.Tensor  # (O, I) int8
    scale: torch.Tensor   # (O,) bfloat16

    @property
    def nbytes(self) -> int:
        return self.weight.numel() + self.scale.numel() * self.scale.element_size()

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        """The stored (padded) input width; inputs of any width up to it are padded by :func:`pad_width`."""
        return int(self.weight.shape[1])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., I) float32 -> (..., O) float32."""
        lead = x.shape[:-1]
        flat = pad_width(x.reshape(-1, x.shape[-1]).to(torch.bfloat16), self.in_features)
        y = torch._weight_int8pack_mm(flat, self.weight, self.scale)
        return y.to(x.dtype).reshape(*lead, self.out_features)


def pad_width(x: torch.Tensor, width: int) -> torch.Tensor:
    """x (..., I) with zero columns appended up to `width` (the int8 weights' padded input width; not
    :mod:`livegesture.streaming.rows`' padding, which adds rows)."""
    return x if x.shape[-1] == width else torch.nn.functional.pad(x, (0, width - x.shape[-1]))


@functools.cache
def int8_rows_independent() -> bool:
    """Whether this machine's int8 kernel gives a row the same bits whatever the number of rows beside it
    (1 to 40, the row counts of the step's products), probed once on the step's shapes."""
    if not int8_available():
        return False
    g = torch.Generator().manual_seed(0)
    for out, inp in ((1024, 256), (256, 1024)):
        lin = quantize_linear(torch.randn(out, inp, generator=g))
        x = torch.randn(40, inp, generator=g)
        alone = lin(x[:1])[0]
        if not all(torch.equal(lin(x[:m])[0], alone) for m in (2, 3, 4, 5, 8, 9, 16, 33, 40)):
            return False
    return True


def quantize_linear(weight: torch.Tensor) -> Int8Linear:
    """Symmetric per-output-channel int8 of a float (out, in) weight: scale = max |w| / 127 of each
    row (held in bfloat16, the kernel's scale type), values rounded to the nearest step; the input
    width padded with zero columns to a multiple of :data:`K_MULTIPLE`."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).to(torch.bfloat16)
    q = torch.round(w / scale.float()[:, None]).clamp_(-127, 127).to(torch.int8)
    q = pad_width(q, -(-q.shape[1] // K_MULTIPLE) * K_MULTIPLE)
    return Int8Linear(q.contiguous(), scale.contiguous())
