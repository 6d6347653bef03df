"""Small stateless layers and state-grouping helpers shared by the experts and the fuse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..streaming.attention import StreamingCrossAttention, StreamingSelfAttention
from ..streaming.state import StreamState
from .config import FRAMES_PER_TOKEN, ModelConfig


def audio_cross_attention(cfg: ModelConfig) -> StreamingCrossAttention:
    """Token tau attends audio frames <= 4 tau + 3 within the last 4H frames.

    After a call the audio stream is 4(tau+n) frames long and the next query sits at frame
    4(tau+n)+3, so the key stream is never ahead of it: max_kv_step=1 gives the minimal ring 4H.
    """
    return StreamingCrossAttention(cfg.dim, cfg.audio.dim, cfg.heads, window=cfg.audio_window_frames,
                                   max_kv_step=1, query_stride=FRAMES_PER_TOKEN,
                                   query_offset=FRAMES_PER_TOKEN - 1, rope=True, dropout=cfg.dropout)


def token_self_attention(cfg: ModelConfig) -> StreamingSelfAttention:
    """Causal RoPE self-attention over the last H token positions, one position per streamed step."""
    return StreamingSelfAttention(cfg.dim, cfg.heads, window=cfg.window_tokens, max_step=1, rope=True,
                                  dropout=cfg.dropout)


def pair_side(num_codes: int, what: str) -> int:
    """K2 with K2 * K2 = `num_codes` (the sub-codebook size of a pair codebook); ValueError otherwise."""
    k2 = int(round(num_codes ** 0.5))
    if k2 * k2 != num_codes:
        raise ValueError(f"{what} needs a square codebook size, got {num_codes}")
    return k2


class PairHead(nn.Module):
    """Logits over K = K2 * K2 token ids as ``a_i + b_j`` for id ``i * K2 + j``.

    For regions whose tokenizer uses a pair codebook (two sub-codes per token): the
    softmax over K then factorises into independent distributions of the two sub-codes,
    2 * K2 classes to learn instead of K, which a small training set can estimate.
    """

    def __init__(self, dim: int, num_codes: int) -> None:
        super().__init__()
        self.k2 = k2 = pair_side(num_codes, "a pair head")
        self.first = nn.Linear(dim, k2)
        self.second = nn.Linear(dim, k2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (self.first(h)[..., :, None] + self.second(h)[..., None, :]).flatten(-2)


class PairEmbedding(nn.Module):
    """Input embedding of pair-codebook ids: ``first[i] + second[j]`` for id ``i * K2 + j``, BOS (id K)
    its own vector.

    The counterpart of :class:`PairHead`: a token's embedding is shared with every token that
    has one of its sub-codes, so "the same sub-code as before" is learned from every
    occurrence of the sub-code rather than separately for each of the K ids, most of which a
    small training set shows once or never. ``weight`` is the full (K + 1, dim) table.
    """

    def __init__(self, num_codes: int, dim: int) -> None:
        super().__init__()
        self.k2 = k2 = pair_side(num_codes, "a pair embedding")
        self.first = nn.Parameter(torch.randn(k2, dim) / 2 ** 0.5)
        self.second = nn.Parameter(torch.randn(k2, dim) / 2 ** 0.5)
        self.bos = nn.Parameter(torch.randn(dim))

    @property
    def weight(self) -> torch.Tensor:
        pairs = (self.first[:, None, :] + self.second[None, :, :]).flatten(0, 1)
        return torch.cat([pairs, self.bos[None]], dim=0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        codes = ids.clamp(max=self.k2 * self.k2 - 1)
        emb = self.first[codes // self.k2] + self.second[codes % self.k2]
        return torch.where((ids == self.k2 * self.k2)[..., None], self.bos.to(emb.dtype), emb)


def token_embedding(cfg: ModelConfig, region: str) -> nn.Module:
    """The input embedding of a region (K codes + BOS): factorised over a pair codebook's
    sub-codes for ``cfg.pair_head_regions`` when ``cfg.pair_embedding``, else a plain table."""
    if cfg.pair_embedding and region in cfg.pair_head_regions:
        return PairEmbedding(cfg.codebook_size, cfg.dim)
    return nn.Embedding(cfg.codebook_size + 1, cfg.dim)


def token_head(cfg: ModelConfig, region: str) -> nn.Module:
    """The logits layer of a region: a pair head for ``cfg.pair_head_regions``, else linear."""
    if region in cfg.pair_head_regions:
        return PairHead(cfg.dim, cfg.codebook_size)
    return nn.Linear(cfg.dim, cfg.codebook_size)


class MLP(nn.Module):
    """Linear -> GELU -> dropout -> Linear (the transformer feed-forward and the token projection)."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class RegionAttention(nn.Module):
    """Bidirectional multi-head attention among the G tokens of one group (the 4 regions at one tau).

    ``forward(x (N, G, dim)) -> (N, G, dim)``. Stateless: every input at tau depends only on
    tokens < tau, so mixing the regions of the same tau in both directions is causal.
    No positional encoding: the fuse adds a learned region embedding to its inputs.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} does not divide dim={dim}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(x, self.qkv, self.out_proj)

    def attend(self, x: torch.Tensor, qkv, out_proj) -> torch.Tensor:
        """The attention with other callables for the two projections (the grouped fuse passes its
        float32 or int8 copies of ``qkv`` and ``out_proj``)."""
        N, G, D = x.shape
        q, k, v = qkv(x).view(N, G, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return out_proj(out.transpose(1, 2).reshape(N, G, D))


def group_state(state: StreamState, batch_size: int) -> StreamState:
    """View every tensor of a state of ``batch_size * g`` rows as ``(batch_size, g, ...)``.

    Why: a session of the model owns several rows of an inner module's batch (its
    conditional and unconditional guidance streams, the fuse's 4 region streams); stored
    grouped, every state tensor stays batch-first over *sessions*, so the generic
    ``state_select / state_reset_ / state_assign_`` of :mod:`livegesture.streaming.state`
    work on the whole model state unchanged."""
    out: StreamState = {}
    for k, v in state.items():
        if isinstance(v, dict):
            out[k] = group_state(v, batch_size)
        else:
            out[k] = v.view(batch_size, v.shape[0] // batch_size, *v.shape[1:])
    return out


def flat_state(state: StreamState) -> StreamState:
    """The inverse of :func:`group_state`: views ``(B, g, ...) -> (B * g, ...)`` sharing storage,
    so the inner modules' in-place updates land in the stored state (``view`` fails loudly
    rather than silently copying if a tensor were not viewable)."""
    out: StreamState = {}
    for k, v in state.items():
        out[k] = flat_state(v) if isinstance(v, dict) else v.view(v.shape[0] * v.shape[1], *v.shape[2:])
    return out


def region_rows(state: StreamState, region: int, num_regions: int) -> StreamState:
    """Views of one region's rows of a state whose rows are ordered (stream, region): row
    ``i * num_regions + region`` of every tensor, sharing storage (in-place updates land in `state`)."""
    out: StreamState = {}
    for k, v in state.items():
        out[k] = region_rows(v, region, num_regions) if isinstance(v, dict) else \
            v.view(v.shape[0] // num_regions, num_regions, *v.shape[1:])[:, region]
    return out
