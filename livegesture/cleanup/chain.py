"""The clean-up chain of one session: the token hand-over blend, then grounding (root control and
foot planting). The hand-over blend works on the decoder's frames and their token phase; grounding
comes last, so it plants the feet of the body as shown."""

from __future__ import annotations

import numpy as np

from ..body.kinematics import Skeleton
from ..motion import Motion
from ..stages.base import FrameBlock, OutputStage
from .config import CleanupConfig
from .grounding import Grounding
from .handover import TokenHandover
from .stage import FrameStage

__all__ = ["Cleanup"]


class Cleanup(OutputStage):
    """``cleanup(motion)`` -> the cleaned next frames of a stream; ``prime(motion)`` continues from
    frames shown before; ``reset()`` starts over. Causal and chunking-independent like its stages;
    an output stage of the engine (:mod:`livegesture.stages`), built by :meth:`CleanupConfig.build`.

    After :meth:`prime`, the stream's horizontal root is moved so that its first frame starts where
    the primed frames ended (a model integrates its root from wherever it starts, so without this a
    chained clip would jump back to its own origin)."""

    def __init__(self, config: CleanupConfig | None = None, fps: float = 30.0,
                 skeleton: Skeleton | None = None) -> None:
        self.config = config or CleanupConfig()
        c = self.config
        self.stages: list[FrameStage] = []
        if c.active and (c.handover.enabled or c.handover.seed_blend_frames):  # (off, it still joins seeds)
            self.stages.append(TokenHandover(c.handover, fps))
        if c.root.mode != "raw" or c.feet.enabled:
            self.stages.append(Grounding(c.root, c.feet, fps, skeleton))
        self.reset()

    def reset(self) -> None:
        for s in self.stages:
            s.reset()
        self._primed_xz: np.ndarray | None = None  # where the primed frames ended (x, z)
        self._shift = np.zeros(2)                  # added to the stream's x, z after a prime

    def process(self, block: FrameBlock) -> FrameBlock:
        return block.with_motion(self(block.motion))

    def state_nbytes(self) -> int:
        return sum(v.nbytes for s in self.stages for v in vars(s).values() if isinstance(v, np.ndarray))

    def __call__(self, motion: Motion) -> Motion:
        if not self.stages or len(motion) == 0:
            return motion
        if self._primed_xz is not None:
            self._shift = self._primed_xz - motion.trans[0, [0, 2]].astype(np.float64)
            self._primed_xz = None
        if self._shift.any():
            trans = motion.trans.astype(np.float64)
            trans[:, [0, 2]] += self._shift
            motion = Motion(motion.poses, trans.astype(np.float32), motion.expressions, motion.betas,
                            fps=motion.fps, gender=motion.gender, model=motion.model)
        for s in self.stages:
            motion = s(motion)
        return motion

    def prime(self, motion: Motion) -> None:
        """Continue from `motion`, the frames shown just before the stream (the avatar's current pose,
        the end of a previous clip): every stage takes them as its history."""
        if not self.stages or len(motion) == 0:
            return
        self.reset()
        for s in self.stages:
            s.prime(motion)
        self._primed_xz = motion.trans[-1, [0, 2]].astype(np.float64)
