"""Output stages: causal, stateful post-processing of each session's emitted frames (see :mod:`.base`)."""

from .base import FrameBlock, OutputStage, StageChain, StageContext, StageSpec

__all__ = ["FrameBlock", "OutputStage", "StageChain", "StageContext", "StageSpec"]
