"""Tiny configs and helpers shared by the model tests."""

from __future__ import annotations

import torch

from livegesture.audio import AudioEncoderConfig
from livegesture.model import LiveGestureModel, ModelConfig

DT = torch.float64
SAMPLES_PER_TOKEN = 6400 / 3  # 4 frames of 1600/3 samples


def tiny_config(**kw) -> ModelConfig:
    base = dict(dim=32, heads=2, expert_blocks=2, fuse_blocks=2, codebook_size=16, window_tokens=4,
                mlp_ratio=2.0, dropout=0.0, audio=AudioEncoderConfig(dim=16, dilations=(1, 2), dropout=0.0))
    base.update(kw)
    return ModelConfig(**base)


def tiny_model(seed: int = 0, dtype: torch.dtype = DT, **kw) -> LiveGestureModel:
    torch.manual_seed(seed)
    return LiveGestureModel(tiny_config(**kw)).to(dtype).eval()


def audio_for(tokens: int, batch: int, seed: int = 0) -> torch.Tensor:
    """Noise-like audio (B, ceil(4T * 1600 / 3)) covering exactly `tokens` tokens."""
    g = torch.Generator().manual_seed(seed)
    n = -(-4 * tokens * 1600 // 3)
    return 0.1 * torch.randn(batch, n, generator=g, dtype=DT)


def randomize_pilor(model: LiveGestureModel, seed: int = 1) -> None:
    """Give PILOR non-zero weights (at init it is the identity) so tests cover its path."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in model.fuse.pilor:
            w.weight.copy_(0.1 * torch.randn(w.weight.shape, generator=g, dtype=w.weight.dtype))
