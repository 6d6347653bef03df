"""The clean-up chain of one session: the token hand-over blend, then grounding (root control and
foot planting). The hand-over blend works on the decoder's frames and their token phase; grounding
comes last, so it plants the feet of the body as shown."""

from __future__ import annotations

from ..body.kinematics import Skeleton
from ..motion import Motion
from .config import CleanupConfig
from .grounding import Grounding
from .handover import TokenHandover
from .stage import FrameStage

__all__ = ["Cleanup"]


class Cleanup:
    """``cleanup(motion)`` -> the cleaned next frames of a stream; ``prime(motion)`` continues from
    frames shown before; ``reset()`` starts over. Causal and chunking-independent like its stages."""

    def __init__(self, config: CleanupConfig | None = None, fps: float = 30.0,
                 skeleton: Skeleton | None = None) -> None:
        self.config = config or CleanupConfig()
        c = self.config
        self.stages: list[FrameStage] = []
        if c.handover.enabled:
            self.stages.append(TokenHandover(c.handover, fps))
        if c.root.mode != "raw" or c.feet.enabled:
            self.stages.append(Grounding(c.root, c.feet, fps, skeleton))

    def reset(self) -> None:
        for s in self.stages:
            s.reset()

    def __call__(self, motion: Motion) -> Motion:
        for s in self.stages:
            motion = s(motion)
        return motion

    def prime(self, motion: Motion) -> None:
        for s in self.stages:  # every stage continues from the frames as they were shown
            s.prime(motion)
