"""xAR-Fuse (docs/design.md §5): PILOR + a (tau, region) transformer on top of the frozen experts.

Inputs: the experts' hidden states ``h`` (B, R=4, n, dim) of the same positions. PILOR
``h~_r = h_r + W_r h_r`` with ``W_r`` zero-initialised, so at initialisation the local
logits ``expert_r.head(h~_r)`` are exactly the experts' logits. Fusion tokens
``x_{tau,r} = Linear(h~_{tau,r}) + e_r`` (learned region embedding) go through
``fuse_blocks`` x [pre-norm causal audio cross-attention -> causal temporal attention ->
inter-region spatial attention -> MLP], a final LayerNorm and one classifier per region.

Which keys each sub-layer sees (query = token (tau, r)):

* audio cross-attention: frames ``4 tau + 3 - 4H < m <= 4 tau + 3`` (shared weights over
  regions; regions are folded into the batch, one ring per (session, region));
* temporal attention: the same region's fusion tokens at ``tau - H < tau' <= tau``
  (factorised "divided" space-time attention: one weight set shared by the 4 region
  streams, each with its own fixed-size ring of H keys). The spatial sub-layer that
  follows mixes regions at each tau, so after one block (tau, r) has information
  from every (tau', r') with tau' <= tau -- the "global temporal" reach of the paper --
  at the cost and cache of 4 single-stream attentions (4H keys per query) rather than
  one joint stream whose within-tau order would have to be made causal or broken;
* spatial attention: the 4 regions at the same tau, bidirectional. Every input at tau
  depends only on tokens < tau of all regions and audio <= 4 tau + 3, so this is causal.
"""

from __future__ import annotations

import torch
from torch import nn

from ..body.constants import REGIONS
from ..streaming.base import StreamingModule
from ..streaming.rows import rowwise
from ..streaming.state import StreamState
from .config import ModelConfig
from .layers import MLP, RegionAttention, audio_cross_attention, token_head, token_self_attention


class FuseBlock(StreamingModule):
    """[audio cross-attention -> per-region temporal attention -> spatial attention -> MLP]."""

    def __init__(self, cfg: ModelConfig, num_regions: int):
        super().__init__()
        d, p = cfg.dim, cfg.dropout
        self.num_regions = num_regions
        self.norm_cross = nn.LayerNorm(d)
        self.cross = audio_cross_attention(cfg)
        self.norm_time = nn.LayerNorm(d)
        self.temporal = token_self_attention(cfg)
        self.norm_space = nn.LayerNorm(d)
        self.spatial = RegionAttention(d, cfg.heads, dropout=p)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.mlp_hidden, dropout=p)
        self.drop = nn.Dropout(p)

    def step(self, x: torch.Tensor, state: StreamState, audio: torch.Tensor) -> torch.Tensor:
        """x (B*R, n, dim) region-major within a session; audio (B, 4n, d_audio) (shared by the R region
        rows of a session: its keys/values are projected once per session, then repeated) -> (B*R, n, dim)."""
        BR, n, d = x.shape
        R = self.num_regions
        kv = (self.cross.k_proj(audio).repeat_interleave(R, dim=0),
              self.cross.v_proj(audio).repeat_interleave(R, dim=0))  # row = b*R + r
        x = x + self.drop(self.cross.step(self.norm_cross(x), state["cross"], write_first=n == 1, kv_projected=kv))
        x = x + self.drop(self.temporal.step(self.norm_time(x), state["temporal"]))
        s = self.norm_space(x).view(BR // R, R, n, d).transpose(1, 2).reshape(BR // R * n, R, d)
        s = self.spatial(s).view(BR // R, n, R, d).transpose(1, 2).reshape(BR, n, d)
        x = x + self.drop(s)
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class XARFuse(StreamingModule):
    """PILOR + fusion transformer + region classifiers.

    ``pilor(h (B, R, n, dim)) -> h~``; ``step(h~, state, audio (B, 4n, d_audio)) -> logits
    (B, R, n, K)``. The state is that of ``B * R`` streams (regions folded into the batch).
    """

    def __init__(self, cfg: ModelConfig, regions: tuple[str, ...] = REGIONS):
        super().__init__()
        d, R = cfg.dim, len(regions)
        self.regions = regions
        self.pilor = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in regions)
        for w in self.pilor:
            nn.init.zeros_(w.weight)  # identity residual at initialisation
        self.in_proj = nn.Linear(d, d)
        self.region_emb = nn.Parameter(0.02 * torch.randn(R, d))
        self.audio_norm = nn.LayerNorm(cfg.audio.dim)
        self.blocks = nn.ModuleList(FuseBlock(cfg, R) for _ in range(cfg.fuse_blocks))
        self.norm = nn.LayerNorm(d)
        self.classifiers = nn.ModuleList(token_head(cfg, r) for r in regions)
        if cfg.fuse_residual:  # fused = local + classifier: exactly the experts' logits at initialisation
            for c in self.classifiers:
                for p in c.parameters():
                    nn.init.zeros_(p)

    @property
    def num_regions(self) -> int:
        return len(self.regions)

    def apply_pilor(self, h: torch.Tensor) -> torch.Tensor:
        """h~ = h + W_r h per region; h (B, R, n, dim)."""
        return torch.stack([h[:, i] + rowwise(w, h[:, i]) for i, w in enumerate(self.pilor)], dim=1)

    def step(self, h: torch.Tensor, state: StreamState, audio: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        B, R, n, d = h.shape
        x = self.in_proj(h) + self.region_emb[:, None, :].to(h.dtype)
        x = x.reshape(B * R, n, d)
        a = self.audio_norm(audio)  # (B, 4n, d_audio): each block repeats its keys/values over the R rows
        for i, block in enumerate(self.blocks):
            x = block.step(x, state[f"blocks.{i}"], a)
        x = self.norm(x).view(B, R, n, d)
        return torch.stack([rowwise(c, x[:, i]) for i, c in enumerate(self.classifiers)], dim=1)
