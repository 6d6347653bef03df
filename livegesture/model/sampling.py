"""Classifier-free guidance and token sampling with one seeded generator per session (docs/design.md §5).

Sampling is by inverse CDF: each session draws exactly one uniform per region and step
from its own :class:`torch.Generator` (also for greedy decoding, so switching modes
never shifts a stream), then picks the token whose CDF interval contains it. All the
maths is row-wise, so a session's tokens do not depend on which other sessions share
the batch.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .config import SamplingConfig


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``u + s (c - u)`` (s = 1: conditional, s = 0: unconditional)."""
    return uncond + scale * (cond - uncond)


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits (..., K) with everything outside the top-k and the top-p nucleus set to -inf.

    The nucleus is the smallest set of most likely tokens whose probability reaches top_p
    (at least one token is always kept)."""
    K = logits.shape[-1]
    out = logits
    if 0 < top_k < K:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(out, dim=-1, descending=True, stable=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of strictly more likely tokens
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def sample_from_logits(logits: torch.Tensor, config: SamplingConfig, uniforms: torch.Tensor) -> torch.Tensor:
    """Token ids (...) from logits (..., K) and uniforms (...) in [0, 1) by inverse CDF."""
    if config.is_greedy:
        return logits.argmax(dim=-1)
    x = filter_logits(logits.to(torch.float64) / config.temperature, config.top_k, config.top_p)
    cdf = x.softmax(dim=-1).cumsum(dim=-1)
    target = (uniforms.to(torch.float64) * cdf[..., -1]).unsqueeze(-1)
    idx = torch.searchsorted(cdf.contiguous(), target.contiguous(), right=True).squeeze(-1)
    return idx.clamp_(max=logits.shape[-1] - 1)


class TokenSampler:
    """Per-session seeded sampling: ``sample(logits (B, R, K)) -> (B, R)`` ids.

    One :class:`torch.Generator` per session (seeded from `seeds`); session i only ever
    consumes its own generator, R uniforms per call."""

    def __init__(self, config: SamplingConfig, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]

    def __len__(self) -> int:
        return len(self.generators)

    def uniforms(self, num: int) -> torch.Tensor:
        """(B, num) float64 uniforms, row i from session i's generator."""
        return torch.stack([torch.rand(num, generator=g, device=self.device, dtype=torch.float64)
                            for g in self.generators])

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[0] != len(self.generators):
            raise ValueError(f"logits batch {logits.shape[0]} != {len(self.generators)} sessions")
        return sample_from_logits(logits, self.config, self.uniforms(logits.shape[1]))

    def get_state(self) -> list[torch.Tensor]:
        """The generators' states (save a session)."""
        return [g.get_state() for g in self.generators]

    def set_state(self, states: Sequence[torch.Tensor]) -> None:
        for g, s in zip(self.generators, states, strict=True):
            g.set_state(s)
