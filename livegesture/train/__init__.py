"""Training: one loop for every stage, DDP, checkpoints, logging."""

from .loop import Trainer, TrainConfig

__all__ = ["TrainConfig", "Trainer"]
