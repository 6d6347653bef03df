"""Bidirectional conv encoder with two stride-2 downsamplings (4 frames -> 1 token).

Used only in training and to encode seed motion, so it may look both ways.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TokenizerConfig


class _ResBlock(nn.Module):
    def __init__(self, ch: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.body = nn.Sequential(nn.GELU(), nn.Conv1d(ch, ch, kernel, padding=pad, dilation=dilation),
                                  nn.GELU(), nn.Dropout(dropout), nn.Conv1d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MotionEncoder(nn.Module):
    """(B, T, D_in) normalised features -> (B, T/4, D_z); T must be a multiple of 4."""

    def __init__(self, in_dim: int, cfg: TokenizerConfig) -> None:
        super().__init__()
        h, k = cfg.hidden, cfg.kernel_size
        layers: list[nn.Module] = [nn.Conv1d(in_dim, h, k, padding=k // 2)]
        for _ in range(2):  # two stride-2 downsamplings
            layers += [_ResBlock(h, k, 3 ** i, cfg.dropout) for i in range(cfg.encoder_blocks)]
            layers.append(nn.Conv1d(h, h, 4, stride=2, padding=1))
        layers += [_ResBlock(h, k, 1, cfg.dropout), nn.GELU(), nn.Conv1d(h, cfg.latent_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 4:
            raise ValueError(f"encoder input length {x.shape[1]} is not a multiple of 4 frames")
        return self.net(x.transpose(1, 2)).transpose(1, 2)
