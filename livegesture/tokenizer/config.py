"""Tokenizer sizes and training settings (DESIGN.md §3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenizerConfig:
    hidden: int = 128          # conv channels of encoder and decoder
    latent_dim: int = 64       # D_z: continuous latent per token (stage 1)
    code_dim: int = 32         # dimension of codebook vectors
    codebook_size: int = 512   # K (the model config must match)
    encoder_blocks: int = 2    # residual blocks per resolution in the encoder
    decoder_blocks: int = 3    # causal residual blocks at token rate
    kernel_size: int = 3
    dropout: float = 0.0
    # stage 2 (vector quantisation)
    ema_decay: float = 0.99
    dead_code_threshold: float = 0.5  # EMA usage below which a code is replaced
    commitment: float = 0.25
    # losses
    velocity_weight: float = 0.5
