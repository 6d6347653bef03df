"""Optional causal smoothing of emitted motion, for live avatars.

The model's frames can jump where one token hands over to the next (every 4 frames), more so
for a model trained on little data. Avatar pipelines usually low-pass their input; this is
that filter, made causal so that the zero look-ahead contract still holds: frame t of the
output depends only on frames <= t of the model's output. It is a first-order low-pass with
time constant ``tau``: each joint rotation moves towards the new frame's rotation along the
shortest arc (normalised quaternion interpolation), translation and expression coefficients
by the same factor ``alpha = 1 - exp(-dt / tau)``. The price is lag: a step in the input
reaches 63% of its size after ``tau`` seconds, so ``tau`` adds to the audio-to-motion latency.
Off by default everywhere; evaluation figures are always of the raw model output.

It is an output stage (:mod:`livegesture.stages`): :class:`SmoothingConfig` is the spec a
session builds its own :class:`CausalSmoother` from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import roma
import torch

from .errors import LiveGestureError
from .motion import Motion
from .stages.base import FrameBlock, OutputStage, StageContext

__all__ = ["CausalSmoother", "SmoothingConfig"]


@dataclass(frozen=True)
class SmoothingConfig:
    """``tau``: time constant in seconds (0 = off). 0.05–0.1 s removes token-boundary jumps."""

    tau: float = 0.08

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tau) and 0 <= self.tau <= 2.0):
            raise LiveGestureError(f"smoothing time constant must be in [0, 2] s, got {self.tau!r}")

    def build(self, ctx: StageContext) -> "CausalSmoother | None":
        """A fresh smoother for one session (None when off: tau 0)."""
        return None if self.tau == 0 else CausalSmoother(self, ctx.fps)


class CausalSmoother(OutputStage):
    """Per-session filter state: the last output frame (quaternions, translation, expressions)."""

    def __init__(self, config: SmoothingConfig, fps: float) -> None:
        self.config = config
        self.alpha = 1.0 if config.tau == 0 else 1.0 - math.exp(-1.0 / (fps * config.tau))
        self._quat: torch.Tensor | None = None  # (J, 4) float64
        self._trans: np.ndarray | None = None
        self._expr: np.ndarray | None = None

    def reset(self) -> None:
        self._quat = self._trans = self._expr = None

    def state_nbytes(self) -> int:
        if self._quat is None:
            return 0
        return self._quat.numel() * 8 + self._trans.nbytes + self._expr.nbytes  # type: ignore[union-attr]

    def process(self, block: FrameBlock) -> FrameBlock:
        return block.with_motion(self(block.motion))

    def prime(self, motion: Motion) -> None:
        """The filter continues from the last frame of `motion`."""
        self.reset()
        if len(motion):
            self(motion[len(motion) - 1:])

    def __call__(self, motion: Motion) -> Motion:
        """The smoothed copy of the next frames of the stream (any number, 0 included)."""
        if len(motion) == 0 or self.alpha >= 1.0:
            return motion
        a = self.alpha
        quats = roma.rotvec_to_unitquat(torch.from_numpy(motion.poses.astype(np.float64)))  # (T, J, 4)
        trans = motion.trans.astype(np.float64)
        expr = motion.expressions.astype(np.float64)
        out_q = torch.empty_like(quats)
        out_t, out_e = np.empty_like(trans), np.empty_like(expr)
        q, t, e = self._quat, self._trans, self._expr
        for i in range(len(motion)):
            if q is None:
                q, t, e = quats[i], trans[i], expr[i]
            else:
                target = quats[i]
                sign = torch.where((q * target).sum(-1, keepdim=True) < 0, -1.0, 1.0)  # shortest arc
                q = q + a * (sign * target - q)
                q = q / q.norm(dim=-1, keepdim=True)
                t = t + a * (trans[i] - t)
                e = e + a * (expr[i] - e)
            out_q[i], out_t[i], out_e[i] = q, t, e
        self._quat, self._trans, self._expr = q.clone(), t.copy(), e.copy()
        poses = roma.unitquat_to_rotvec(out_q).numpy().astype(np.float32)
        return Motion(poses, out_t.astype(np.float32), out_e.astype(np.float32), motion.betas,
                      fps=motion.fps, gender=motion.gender, model=motion.model)
