"""The streaming stage pattern shared by the clean-up stages.

A stage is a per-session object: ``stage(motion)`` takes the next frames of a stream (any
number, 0 included) and returns as many processed frames; its state (the frames it remembers,
locks, filters) is explicit and of fixed size, so memory stays constant however long the stream
runs. Frame t of the output depends only on input frames <= t. Stages walk their input one frame
at a time wherever the state carries over; what they compute for many frames at once are rotation
conversions by scipy's ``Rotation``, whose compiled loops treat each rotation alone (scalar C
maths), so a stream cut into any chunks gives bit-identical output to the whole clip in one call.
"""

from __future__ import annotations

import numpy as np

from ..motion import Motion


#: frames processed per call of a stage's work (longer inputs are walked in blocks of this size)
BLOCK_FRAMES = 120


class FrameStage:
    """Base class: subclasses implement :meth:`reset` and :meth:`_process` (in place, float64)."""

    def __init__(self, fps: float) -> None:
        self.fps = float(fps)
        self.reset()

    def reset(self) -> None:  # pragma: no cover - every stage overrides it
        raise NotImplementedError

    def _process(self, poses: np.ndarray, trans: np.ndarray, expr: np.ndarray) -> None:  # pragma: no cover
        """Process the next frames in place: `poses` (T, 55, 3) axis-angle, `trans` (T, 3), `expr` (T, 100)."""
        raise NotImplementedError

    def __call__(self, motion: Motion) -> Motion:
        """The processed copy of the next frames of the stream."""
        n = len(motion)
        if n == 0:
            return motion
        poses = motion.poses.astype(np.float64)
        trans = motion.trans.astype(np.float64)
        expr = motion.expressions.astype(np.float64)
        for a in range(0, n, BLOCK_FRAMES):  # bounded temporaries, whatever the push size
            self._process(poses[a:a + BLOCK_FRAMES], trans[a:a + BLOCK_FRAMES], expr[a:a + BLOCK_FRAMES])
        return Motion(poses.astype(np.float32), trans.astype(np.float32), expr.astype(np.float32),
                      motion.betas, fps=motion.fps, gender=motion.gender, model=motion.model)

    def prime(self, motion: Motion) -> None:
        """Take `motion` as the frames shown just before the stream starts (e.g. the end of a previous
        clip or the avatar's current pose): the state continues from them, nothing is returned."""
        self(motion)
