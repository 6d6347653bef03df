"""Configs of the hierarchical autoregressive model, its masking and its sampling (docs/design.md §5).

Frozen dataclasses so that a config is hashable, comparable and loadable with
:func:`livegesture.config.from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..audio.encoder import AudioEncoderConfig

#: tokens per motion frame group: token tau covers motion frames 4 tau .. 4 tau + 3
FRAMES_PER_TOKEN = 4


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the region experts, xAR-Fuse and the shared audio encoder.

    The expert and the fuse use the same width ``dim`` so that PILOR (a residual
    ``dim x dim`` map) and the fuse input need no extra projection. ``window_tokens``
    (H) is both the temporal self-attention window (H tokens, the query included, so
    H - 1 earlier positions plus itself, i.e. H history tokens since the input at
    tau is token tau - 1) and, times 4, the audio cross-attention window
    (4H frames, ending at the last frame of the query's token).
    """

    dim: int = 256
    heads: int = 4
    expert_blocks: int = 4
    fuse_blocks: int = 4
    codebook_size: int = 512  # K
    window_tokens: int = 32  # H
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    embed_noise_std: float = 0.1  # Gaussian noise on the experts' input embeddings (training only)
    cond_drop_prob: float = 0.1  # classifier-free guidance: per-sequence drop of audio (+ text)
    text_drop_prob: float = 0.3  # per-sequence drop of text alone, so that the model runs without it
    # training-only corruption of the audio features, so that a small training set cannot be
    # memorised through the audio (features identifying a position in the training clip)
    audio_feat_dropout: float = 0.0  # element-wise dropout of the audio features
    audio_noise_std: float = 0.0  # Gaussian noise added to the audio features
    # training-only random gain of each window's waveform, uniform in +-audio_gain_db dB: microphones,
    # rooms and recordings differ in level, and log-mel features shift with it
    audio_gain_db: float = 0.0
    label_smoothing: float = 0.0  # of the training cross-entropies (evaluation is never smoothed)
    # regions whose logits factorise over a pair codebook's two sub-codes (layers.PairHead)
    pair_head_regions: tuple[str, ...] = ()
    # and embed their input tokens as the sum of two sub-code vectors (layers.PairEmbedding)
    pair_embedding: bool = False
    text_vocab_size: int = 0  # 0 = no text input
    lambda_local: float = 0.3
    lambda_fuse: float = 1.0
    # fused logits = the experts' (PILOR) logits + zero-initialised region classifiers: the fuse
    # starts as exactly the experts and learns only a cross-region correction
    fuse_residual: bool = False
    # ablation switches, one per row of the paper's ablation table (docs/reproduce.md); False removes
    # that part, its parameters and its streaming state (text cues: data.use_text; UGM: masking.ugm)
    fuse_temporal: bool = True  # xAR-Fuse's causal temporal attention
    fuse_spatial: bool = True   # xAR-Fuse's inter-region spatial attention
    pilor: bool = True          # PILOR adapters h~ = h + W_r h on the experts' hidden states
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)

    def __post_init__(self) -> None:
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"heads={self.heads} must divide dim={self.dim} into even head sizes (RoPE)")
        if min(self.expert_blocks, self.codebook_size, self.window_tokens) < 1 or self.fuse_blocks < 0:
            raise ValueError("expert_blocks, codebook_size, window_tokens must be >= 1, fuse_blocks >= 0")
        for name in ("dropout", "cond_drop_prob", "text_drop_prob", "audio_feat_dropout", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        object.__setattr__(self, "pair_head_regions", tuple(self.pair_head_regions))
        if self.pair_head_regions and round(self.codebook_size ** 0.5) ** 2 != self.codebook_size:
            raise ValueError(f"pair_head_regions need a square codebook_size, got {self.codebook_size}")
        if self.audio_noise_std < 0 or self.audio_gain_db < 0:
            raise ValueError("audio_noise_std and audio_gain_db must be >= 0")
        if self.audio.vocab_size != self.text_vocab_size:
            # the text vocabulary is the model's; the audio encoder that embeds words follows it
            object.__setattr__(self, "audio", dataclasses.replace(self.audio, vocab_size=self.text_vocab_size))

    @property
    def audio_window_frames(self) -> int:
        """Audio cross-attention window in 30 Hz frames (4H)."""
        return FRAMES_PER_TOKEN * self.window_tokens

    @property
    def mlp_hidden(self) -> int:
        return int(round(self.dim * self.mlp_ratio))

    @classmethod
    def demo(cls, **overrides) -> "ModelConfig":
        """A small model that trains on a laptop CPU (dim 128, 2 + 2 blocks, K 256). Not the `demo`
        preset of ``livegesture/configs/demo.yaml`` (dim 64, 1 + 1 blocks, pair codebooks of 529
        tokens), which was sized for the one minute of real sample motion; presets are the source
        of truth for trained models, this constructor is for code and tests."""
        base = dict(dim=128, heads=4, expert_blocks=2, fuse_blocks=2, codebook_size=256, window_tokens=32,
                    audio=AudioEncoderConfig(dim=128))
        base.update(overrides)
        return cls(**base)

    @classmethod
    def base(cls, **overrides) -> "ModelConfig":
        """docs/design.md §5 "base": dim 256, 4 heads, 4 expert + 4 fuse blocks, K 512, H 32."""
        base = dict(dim=256, heads=4, expert_blocks=4, fuse_blocks=4, codebook_size=512, window_tokens=32,
                    audio=AudioEncoderConfig(dim=256))
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class MaskingConfig:
    """Input corruption of stage-2 training (uncertainty-guided masking + random region masking).

    UGM ratio at training step ``s``: ``r(s) = max_ratio * (1 - cos(pi * min(s / ramp_steps, 1))) / 2``
    (0 at the start, ``max_ratio`` from ``ramp_steps`` on). Per sequence and region the
    ``M_eff(s) = min(floor(r(s) * T), T - 1)`` history tokens (tokens 0 .. T-2, the ones
    that appear as inputs) with the lowest teacher-forced probability become MASK.
    RM: with probability ``region_prob`` per sequence, one region chosen uniformly
    has its whole history (every input but BOS) replaced by MASK.
    """

    max_ratio: float = 0.3
    ramp_steps: int = 20000
    region_prob: float = 0.1
    ugm: bool = True  # ablation switch: False = no uncertainty-guided masking (M_eff = 0; RM unchanged)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_ratio <= 1.0 or not 0.0 <= self.region_prob <= 1.0:
            raise ValueError("max_ratio and region_prob must be in [0, 1]")
        if self.ramp_steps < 0:
            raise ValueError("ramp_steps must be >= 0")

    def ratio(self, step: int) -> float:
        """UGM mask ratio r(s) of the cosine ramp."""
        frac = 1.0 if self.ramp_steps == 0 else min(max(step, 0) / self.ramp_steps, 1.0)
        return self.max_ratio * (1.0 - math.cos(math.pi * frac)) / 2.0

    def num_masked(self, step: int, length: int) -> int:
        """M_eff(s) for sequences of `length` tokens: ``min(floor(r(s) * T), T - 1)`` (0 without UGM)."""
        if not self.ugm:
            return 0
        return max(0, min(int(math.floor(self.ratio(step) * length + 1e-9)), length - 1))


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are drawn from the (guided) fused logits.

    ``greedy`` (or ``temperature == 0``) takes the argmax. Otherwise logits / temperature
    are filtered by ``top_k`` (0 = off) then ``top_p`` (1 = off) and sampled. Guidance
    ``logits = u + s (c - u)``; ``guidance_scale == 1`` skips the unconditional stream.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    guidance_scale: float = 1.5
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.temperature < 0 or self.top_k < 0 or not 0.0 < self.top_p <= 1.0:
            raise ValueError("temperature >= 0, top_k >= 0 and 0 < top_p <= 1 are required")

    @property
    def guided(self) -> bool:
        return self.guidance_scale != 1.0

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0.0
