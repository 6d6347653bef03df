"""The experiment config: data selection, model sizes and every stage's training settings.

Presets ('demo', 'base') ship as YAML in livegesture/configs/; a user file
overrides any subset of keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config
from ..tokenizer.config import TokenizerConfig
from .loop import TrainConfig

PRESETS_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class DataConfig:
    window_frames: int = 64
    stride_frames: int = 12
    train_split: str = "train"      # used when the folder has train_test_split.csv
    val_split: str = "val"
    speakers: tuple[int, ...] = ()  # empty: all speakers
    train_ids: tuple[str, ...] = ()  # explicit ids override the split (flat folders)
    val_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokenizer_stage1: TrainConfig = field(default_factory=lambda: TrainConfig(steps=2000, lr=1e-3))
    tokenizer_stage2: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1000, lr=1e-3))


def load_experiment(config: str | Path | None = None, overrides: dict | None = None) -> ExperimentConfig:
    """A preset name ('demo', 'base'), a YAML path, or None (the 'demo' preset)."""
    if config is None:
        config = "demo"
    preset = PRESETS_DIR / f"{config}.yaml"
    path = preset if isinstance(config, str) and preset.is_file() else Path(config)
    return load_config(ExperimentConfig, path, overrides)
