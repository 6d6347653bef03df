"""Causal clean-up of streamed motion for avatars: token hand-overs without jumps, a root that stays
near its start, planted feet. Streaming stages (frames in, frames out, explicit state); on by
default for generated motion, ``CleanupConfig.off()`` gives the raw model output."""

from .chain import Cleanup
from .config import CleanupConfig, FootConfig, HandoverConfig, RootConfig
from .grounding import Grounding
from .handover import TokenHandover

__all__ = ["Cleanup", "CleanupConfig", "FootConfig", "Grounding", "HandoverConfig", "RootConfig",
           "TokenHandover"]
