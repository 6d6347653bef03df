"""Region expert xAR (docs/design.md §5): one causal autoregressive transformer per body region.

Token ids: ``0 .. K-1`` codes, ``K`` = BOS, ``K + 1`` = MASK. The input at position
tau is the token tau - 1 (BOS at tau = 0), so the logits at tau predict token tau from
the region's tokens < tau and the audio frames <= 4 tau + 3.

Layout: token embedding -> MLP projection -> ``expert_blocks`` x [pre-norm causal
audio cross-attention (window 4H frames) -> pre-norm causal temporal self-attention
with RoPE (window H) -> pre-norm MLP] -> final LayerNorm = hidden ``h`` -> linear head
over K. Every layer with memory is a streaming module; ``step`` with n positions and
a fresh state is the offline (teacher-forced) forward.
"""

from __future__ import annotations

import torch
from torch import nn

from ..streaming.base import StreamingModule
from ..streaming.state import StreamState
from .config import FRAMES_PER_TOKEN, ModelConfig
from .layers import MLP, audio_cross_attention, token_embedding, token_head, token_self_attention


class ExpertBlock(StreamingModule):
    """[cross-attention to audio -> temporal self-attention -> MLP], pre-norm residual."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, p = cfg.dim, cfg.dropout
        self.norm_cross = nn.LayerNorm(d)
        self.cross = audio_cross_attention(cfg)
        self.norm_self = nn.LayerNorm(d)
        self.self_attn = token_self_attention(cfg)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = MLP(d, cfg.mlp_hidden, dropout=p)
        self.drop = nn.Dropout(p)

    def step(self, x: torch.Tensor, state: StreamState, audio: torch.Tensor) -> torch.Tensor:
        """x (B, n, dim), audio (B, 4n, d_audio) -> (B, n, dim)."""
        x = x + self.drop(self.cross.step(self.norm_cross(x), state["cross"], audio, write_first=x.shape[1] == 1))
        x = x + self.drop(self.self_attn.step(self.norm_self(x), state["self_attn"]))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class RegionExpert(StreamingModule):
    """One region's xAR: ``step(inputs (B, n), state, audio (B, 4n, d_audio)) -> h (B, n, dim)``;
    ``head(h)`` gives the logits over the K codes."""

    def __init__(self, cfg: ModelConfig, region: str = ""):
        super().__init__()
        self.cfg = cfg
        self.region = region
        K, d = cfg.codebook_size, cfg.dim
        self.codebook_size = K
        self.bos_id, self.mask_id = K, K + 1
        self.tok_emb = token_embedding(cfg, region)  # codes + BOS
        # MASK has its own parameter: stage 1 never feeds MASK, stage 2 (UGM/RM) trains this vector
        # alone while the rest of the expert stays frozen, so unmasked behaviour is unchanged
        self.mask_emb = nn.Parameter(torch.randn(d))
        self.in_proj = MLP(d, cfg.mlp_hidden, dropout=cfg.dropout)
        self.audio_norm = nn.LayerNorm(cfg.audio.dim)
        self.blocks = nn.ModuleList(ExpertBlock(cfg) for _ in range(cfg.expert_blocks))
        self.norm = nn.LayerNorm(d)
        self.head = token_head(cfg, region)

    def embed(self, inputs: torch.Tensor, noise_std: float = 0.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """Input embeddings (B, n, dim) of ids (B, n) in [0, K+1], plus N(0, noise_std^2) noise."""
        emb = self.tok_emb(inputs.clamp(max=self.bos_id))
        emb = torch.where((inputs == self.mask_id)[..., None], self.mask_emb.to(emb.dtype), emb)
        if noise_std > 0:
            emb = emb + noise_std * torch.randn(emb.shape, generator=generator, device=emb.device,
                                                dtype=emb.dtype)
        return emb

    def step(self, inputs: torch.Tensor, state: StreamState, audio: torch.Tensor,  # type: ignore[override]
             noise_std: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Advance n positions: inputs (B, n) ids, audio (B, 4n, d_audio) features of their frames."""
        B, n = inputs.shape
        if audio.shape[:2] != (B, FRAMES_PER_TOKEN * n):
            raise ValueError(f"audio {tuple(audio.shape)} must be (B={B}, 4n={FRAMES_PER_TOKEN * n}, d)")
        x = self.in_proj(self.embed(inputs, noise_std, generator))
        a = self.audio_norm(audio)
        for i, block in enumerate(self.blocks):
            x = block.step(x, state[f"blocks.{i}"], a)
        return self.norm(x)

    def forward(self, inputs: torch.Tensor, audio: torch.Tensor,  # type: ignore[override]
                state: StreamState | None = None) -> torch.Tensor:
        """Logits (B, n, K) (fresh state unless given)."""
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device, audio.dtype)
        return self.head(self.step(inputs, state, audio))
