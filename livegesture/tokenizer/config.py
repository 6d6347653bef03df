"""Tokenizer sizes and training settings (docs/design.md §3)."""

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
    # regions whose token is a pair of sub-codes from two sqrt(K)-code books (id = i * sqrt(K) + j);
    # pair_kind "residual" (second book quantises the first one's error) or "product" (code halves)
    pair_regions: tuple[str, ...] = ()
    pair_kind: str = "residual"
    # losses
    velocity_weight: float = 0.5
    # stage 3 (decoder fine-tuning on tokens): the decoder learns to join independently chosen codes
    # without a jump at each token boundary, so velocity and acceleration errors weigh more there
    finetune_velocity_weight: float = 1.0
    finetune_acceleration_weight: float = 1.0
    # extra L1 on the velocity and acceleration across token boundaries (frame 4k+3 -> 4k+4) in stage 3
    finetune_boundary_weight: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "pair_regions", tuple(self.pair_regions))
        if min(self.velocity_weight, self.finetune_velocity_weight, self.finetune_acceleration_weight,
               self.finetune_boundary_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.pair_kind not in ("residual", "product"):
            raise ValueError(f"pair_kind must be 'residual' or 'product', got {self.pair_kind!r}")
        from ..body.constants import REGIONS

        unknown = [r for r in self.pair_regions if r not in REGIONS]
        if unknown:
            raise ValueError(f"pair_regions: unknown region(s) {unknown}; regions are {REGIONS}")
        if self.pair_regions:
            k2 = int(round(self.codebook_size ** 0.5))
            if k2 * k2 != self.codebook_size:
                raise ValueError(f"pair_regions need a square codebook_size, got {self.codebook_size}")

    def stage1_fields(self) -> dict:
        """The fields stage 1 (encoder, decoder) depends on; the others only shape stage 2."""
        from dataclasses import asdict

        return {k: v for k, v in asdict(self).items() if k not in STAGE2_FIELDS}


#: fields that only change stages 2 and 3 (projection, codebook, decoder fine-tuning): stage 2 may be
#: rerun with other values on a stage-1 file
STAGE2_FIELDS = frozenset({"code_dim", "codebook_size", "ema_decay", "dead_code_threshold", "commitment",
                           "pair_regions", "pair_kind", "finetune_velocity_weight",
                           "finetune_acceleration_weight", "finetune_boundary_weight"})
