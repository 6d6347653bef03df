"""Weight-only int8 matrix products for the streaming step (docs/design.md §6, "Precision").

Why: at batch 1 the KV-cached step multiplies a few rows by every weight of the model, so it
streams ~117 MB (base, float32) from memory per token, and the float32 GEMM kernels read those
weights at a fraction of the memory bandwidth at 2-4 rows. PyTorch's weight-only int8 kernel
(``torch._weight_int8pack_mm``: int8 weights (out, in), one scale per output channel, bfloat16
rows) reads a quarter of the bytes and was measured 2-5x faster per product on the step's shapes
(``benchmarks/matmul_cold.py``). Its rows are independent of one another (checked by
``tests/model/test_quant.py``), so the engine's bit-identity across front ends holds inside the
int8 path too.

What it costs: the weights are rounded to 8 bits per output channel, the rows of each product to
bfloat16 and its result to bfloat16 (accumulation is float32); residual streams, norms, attention,
softmax and sampling stay float32. ``benchmarks/precision_agreement.py`` measures the token
agreement with float32 and the evaluation figures with it. Float32 stays the default and is what
every exactness test uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PRECISIONS", "Int8Linear", "check_precision", "int8_available", "quantize_linear"]

#: inference precisions of the step's matrix products
PRECISIONS = ("float32", "int8")


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

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., I) float32 -> (..., O) float32."""
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch._weight_int8pack_mm(flat, self.weight, self.scale)
        return y.to(x.dtype).reshape(*lead, self.out_features)


def quantize_linear(weight: torch.Tensor) -> Int8Linear:
    """Symmetric per-output-channel int8 of a float (out, in) weight: scale = max |w| / 127 of each
    row (held in bfloat16, the kernel's scale type), values rounded to the nearest step."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).to(torch.bfloat16)
    q = torch.round(w / scale.float()[:, None]).clamp_(-127, 127).to(torch.int8)
    return Int8Linear(q.contiguous(), scale.contiguous())
