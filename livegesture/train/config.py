"""The experiment config: data selection, model sizes and every stage's training settings.

Presets ('demo', 'base') ship as YAML in livegesture/configs/; a user file
overrides any subset of keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..cleanup.config import CleanupConfig
from ..config import load_config
from ..errors import ConfigError
from ..model.config import FRAMES_PER_TOKEN, MaskingConfig, ModelConfig, SamplingConfig
from ..tokenizer.config import TokenizerConfig
from .loop import TrainConfig

PRESETS_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class DataConfig:
    window_frames: int = 64         # tokenizer training windows
    # experts / fuse training windows; 0: twice the model's attention window (8 x model.window_tokens).
    # They must be longer than that window: a long stream attends over a full window with its start
    # out of view at every step, and positions a training window never reaches are untrained there
    # (docs/design.md §5, "Training windows")
    ar_window_frames: int = 0
    stride_frames: int = 12
    # tokenizer training windows may start at any frame (motion only): 0 = stride_frames
    tokenizer_stride_frames: int = 0
    train_split: str = "train"      # used when the folder has train_test_split.csv
    val_split: str = "val"
    speakers: tuple[int, ...] = ()  # empty: all speakers
    train_ids: tuple[str, ...] = ()  # explicit ids override the split (flat folders)
    val_ids: tuple[str, ...] = ()
    use_text: bool = False          # word ids from TextGrids as an extra condition
    vocab_min_count: int = 1
    audio_context_frames: int = 24  # audio before each window, so the causal encoder is warmed up
    mirror: bool = False            # add left/right mirrored copies of the training clips
    # hold out the last `val_tail` share of every training clip as the validation set (keep_best), so
    # that a separate clip can stay a pure test clip; the slices are named "<id>#tail"
    val_tail: float = 0.0

    def __post_init__(self) -> None:
        if self.tokenizer_stride_frames < 0:
            raise ValueError(f"data.tokenizer_stride_frames must be >= 0, got {self.tokenizer_stride_frames}")
        if not 0.0 <= self.val_tail < 1.0:
            raise ValueError(f"data.val_tail must be in [0, 1), got {self.val_tail}")
        if self.val_tail > 0 and self.val_ids:
            raise ValueError("give either data.val_ids or data.val_tail, not both")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokenizer_stage1: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2000, lr=1e-3))
    tokenizer_stage2: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, lr=1e-3))
    # decoder fine-tuning on the stage-2 tokens (svq.py); steps 0 skips it in `train all`
    tokenizer_stage3: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, lr=5e-4))
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    experts: TrainConfig = field(default_factory=lambda: TrainConfig(steps=3000, lr=5e-4))
    fuse: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2000, lr=5e-4))
    # the output clean-up a model file's sessions use by default (tuned to its decoder's joins)
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)

    def __post_init__(self) -> None:
        if self.model.codebook_size != self.tokenizer.codebook_size:
            raise ValueError(f"model.codebook_size {self.model.codebook_size} differs from "
                             f"tokenizer.codebook_size {self.tokenizer.codebook_size}")
        extra = set(self.model.pair_head_regions) - set(self.tokenizer.pair_regions)
        if extra:
            raise ValueError(f"model.pair_head_regions {sorted(extra)} need pair codebooks "
                             "(tokenizer.pair_regions)")
        if self.data.window_frames % 4 or self.data.ar_window_frames % 4 or self.data.ar_window_frames < 0:
            raise ValueError("data.window_frames and data.ar_window_frames must be multiples of 4 (>= 0)")

    @property
    def ar_window_frames(self) -> int:
        """The experts' and the fuse's training (and held-out NLL) window in frames."""
        return self.data.ar_window_frames or 2 * FRAMES_PER_TOKEN * self.model.window_tokens

    def check_ar_window(self) -> None:
        """Refuse AR training windows that do not reach past the attention window (training only: a
        model file trained so still loads and streams)."""
        need = FRAMES_PER_TOKEN * (self.model.window_tokens + 1)
        if self.ar_window_frames < need:
            raise ConfigError(f"data.ar_window_frames {self.ar_window_frames} is too short for model.window_tokens "
                              f"{self.model.window_tokens}: AR training windows need >= {need} frames (window + 1 "
                              "token) so that every attention position a stream uses is trained; 0 picks twice the window")


def load_experiment(config: str | Path | None = None, overrides: dict | None = None) -> ExperimentConfig:
    """A preset name ('demo', 'base'), a YAML path, or None (the 'demo' preset)."""
    if config is None:
        config = "demo"
    preset = PRESETS_DIR / f"{config}.yaml"
    path = preset if isinstance(config, str) and preset.is_file() else Path(config)
    if not path.is_file():
        raise ConfigError(f"{config}: neither a preset ({', '.join(presets())}) nor a config file")
    return load_config(ExperimentConfig, path, overrides)


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
