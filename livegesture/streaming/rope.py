"""Rotary position embedding with float64 angles (absolute positions reach ~1e5 in long streams)."""

from __future__ import annotations

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    """Rotate pairs ``(x[..., i], x[..., i + Dh/2])`` by ``position * base**(-2i/Dh)``.

    ``forward(x (B, H, T, Dh), positions (B, T) or (T,), integer or float) -> (B, H, T, Dh)``.
    Angles are computed in float64 (then cos/sin cast to ``x.dtype``), so that the
    rotation of a position near 1e5 is as exact as that of a small one and the
    scores ``<rot(q, p), rot(k, p')>`` depend on ``p - p'`` only. No parameters.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"head_dim must be even, got {head_dim}")
        self.head_dim = head_dim
        self.base = float(base)
        # float64 inverse frequencies per device; a plain attribute, not a buffer, so that
        # module.to(dtype) never casts them down
        self._inv_freq: dict[torch.device, torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}"

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape ``positions.shape + (Dh/2,)`` in `dtype`."""
        inv_freq = self._inv_freq.get(positions.device)
        if inv_freq is None:
            half = self.head_dim // 2
            inv_freq = self.base ** (-torch.arange(half, device=positions.device, dtype=torch.float64) / half)
            self._inv_freq[positions.device] = inv_freq
        ang = positions.to(torch.float64)[..., None] * inv_freq
        return ang.cos().to(dtype), ang.sin().to(dtype)

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-width tables ``(cos|cos, -sin|sin)`` of shape (B, 1, T, Dh) for :func:`rotate`
        (positions (B, T)), broadcast over heads: compute once, rotate every layer's q and k."""
        cos, sin = self.cos_sin(positions, dtype)
        return torch.cat([cos, cos], dim=-1)[:, None], torch.cat([-sin, sin], dim=-1)[:, None]

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"last dim {x.shape[-1]} != head_dim {self.head_dim}")
        if positions.dim() == 1:
            positions = positions[None]
        return rotate(x, *self.tables(positions, x.dtype))


def rotate(x: torch.Tensor, cos2: torch.Tensor, sin2: torch.Tensor) -> torch.Tensor:
    """x (..., T, Dh) rotated with :meth:`RotaryEmbedding.tables`: ``x * cos2 + swap(x) * sin2``, where
    swap exchanges the two halves; the same numbers as ``[x1 cos - x2 sin, x2 cos + x1 sin]``."""
    half = x.shape[-1] // 2
    swapped = x.unflatten(-1, (2, half)).flip(-2).flatten(-2)
    return x * cos2 + swapped * sin2
