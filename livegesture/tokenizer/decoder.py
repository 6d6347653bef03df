"""Causal streaming decoder: latent tokens -> frames, frame 4*tau+k sees tokens <= tau only."""

from __future__ import annotations

import torch
from torch import nn

from ..streaming import StreamingModule
from ..streaming.conv import CausalConv1d
from ..streaming.state import StreamState
from ..streaming.unfold import TimeUnfold
from .config import TokenizerConfig


class CausalResBlock(StreamingModule):
    """x + conv1x1(gelu(causal_conv(gelu(x)))): causal and streamable."""

    def __init__(self, ch: int, kernel: int, dilation: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = CausalConv1d(ch, ch, kernel, dilation=dilation)
        self.proj = nn.Linear(ch, ch)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def step(self, x: torch.Tensor, state: StreamState) -> torch.Tensor:
        return x + self.proj(self.drop(self.act(self.conv(self.act(x), state["conv"]))))


class CausalMotionDecoder(StreamingModule):
    """(B, n, D_z) latents at token rate -> (B, 4n, D_out) frames.

    Causal convs at token rate, a learned linear time unfold of each token into its
    4 frames, one causal conv at frame rate (smooths across token boundaries without
    looking ahead), then a linear read-out.
    """

    def __init__(self, out_dim: int, cfg: TokenizerConfig) -> None:
        super().__init__()
        h, k = cfg.hidden, cfg.kernel_size
        self.inp = nn.Linear(cfg.latent_dim, h)
        self.blocks = nn.ModuleList(CausalResBlock(h, k, 2 ** i, cfg.dropout)
                                    for i in range(cfg.decoder_blocks))
        self.unfold = TimeUnfold(h, h, factor=4)
        self.frame_block = CausalResBlock(h, k, 1, cfg.dropout)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(h, out_dim))

    def step(self, z: torch.Tensor, state: StreamState) -> torch.Tensor:
        x = self.inp(z)
        for i, block in enumerate(self.blocks):
            x = block(x, state[f"blocks.{i}"])
        x = self.unfold(x, state["unfold"])
        x = self.frame_block(x, state["frame_block"])
        return self.out(x)
