"""Input corruption for stage-2 training: uncertainty-guided masking (UGM) and random region masking (RM).

Masks act on *history tokens*: token tau appears as the input at position tau + 1, so a
mask over tokens (B, R, T) replaces inputs 1 .. T-1 (token T-1 is never an input; BOS at
position 0 is never masked). Targets are a separate tensor and are never masked.
"""

from __future__ import annotations

import torch


def shift_right(tokens: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Inputs (..., T) of targets (..., T): BOS then tokens 0 .. T-2."""
    bos = torch.full_like(tokens[..., :1], bos_id)
    return torch.cat([bos, tokens[..., :-1]], dim=-1)


def masked_inputs(tokens: torch.Tensor, token_mask: torch.Tensor, bos_id: int, mask_id: int) -> torch.Tensor:
    """Inputs (..., T) with the tokens where `token_mask` (..., T) is True replaced by MASK."""
    masked = torch.where(token_mask, torch.full_like(tokens, mask_id), tokens)
    return shift_right(masked, bos_id)


def ugm_token_mask(probs: torch.Tensor, num_masked: int) -> torch.Tensor:
    """UGM: True at the `num_masked` history tokens (0 .. T-2) of each row of `probs` (..., T) with the
    lowest probability (ties: the earlier token). `probs` are the teacher-forced probabilities of the
    true tokens (any monotone score works, e.g. log-probabilities)."""
    T = probs.shape[-1]
    mask = torch.zeros(probs.shape, dtype=torch.bool, device=probs.device)
    k = max(0, min(int(num_masked), T - 1))
    if k == 0:
        return mask
    order = torch.sort(probs[..., :T - 1], dim=-1, stable=True).indices[..., :k]
    return mask.scatter_(-1, order, True)


def region_token_mask(batch_size: int, num_regions: int, length: int, prob: float,
                      generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """RM: (B, R, T) bool; for each sequence with probability `prob`, one region chosen uniformly
    has all its history tokens (0 .. T-2) True."""
    hit = torch.rand(batch_size, generator=generator, device=device) < prob
    region = torch.randint(num_regions, (batch_size,), generator=generator, device=device)
    rows = hit[:, None] & (torch.arange(num_regions, device=device)[None] == region[:, None])  # (B, R)
    hist = torch.arange(length, device=device) < length - 1
    return rows[:, :, None] & hist[None, None, :]
