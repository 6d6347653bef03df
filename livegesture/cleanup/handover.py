"""Token hand-over blend: continuous motion where one 133 ms token hands over to the next, no lag.

The causal decoder turns each token into 4 frames; where two tokens meet the decoded motion can
jump (docs/design.md §3). A low-pass removes the jump but delays everything by its time constant.
This stage instead *inertialises* each hand-over: at the first frame of a token it takes the
difference (an offset) between where the last two output frames were heading (same angular and
linear velocity, scaled by ``velocity_keep``) and the decoded frame; ``boundary_weight`` of that
offset is added to the boundary frame, and it falls linearly to 0 over ``blend_frames`` frames.
So the jump is spread over the first steps of the token instead of one, the output follows the
decoded motion without delay wherever it is continuous, and it is back on the decoded pose within
the token (on the generated demo clip: boundary ratio 1.83 -> 0.97, shift of the wrist trajectory
0.2 frames, where the 80 ms low-pass gets 1.02 at a shift of 1.5 frames).
Joint rotations are blended as quaternions (offsets applied on the left, shortest arc),
translation and expression coefficients linearly. Causal: frame t uses input frames <= t only.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.constants import NUM_EXPRESSIONS, NUM_JOINTS
from ..motion import Motion
from .config import HandoverConfig
from .stage import FrameStage

__all__ = ["TokenHandover", "fade", "offset_weight"]


def fade(k: int, frames: int) -> float:
    """1 - smoothstep(k / frames): 1 at k = 0, 0 from `frames` on."""
    if k >= frames:
        return 0.0
    x = k / frames
    return 1.0 - x * x * (3.0 - 2.0 * x)


def offset_weight(k: int, config: HandoverConfig) -> float:
    """Share of a hand-over offset left `k` frames after the boundary: ``boundary_weight`` on the
    boundary frame, then linearly down to 0 at ``blend_frames``."""
    if k >= config.blend_frames:
        return 0.0
    return config.boundary_weight * (1.0 - k / config.blend_frames)


class TokenHandover(FrameStage):
    """Per-session state: the last two output frames, the current offsets and the token phase.

    After :meth:`prime` the first frame is joined to the primed frames the same way, with the
    whole offset (weight 1) fading over ``seed_blend_frames``: a session started from seed motion
    continues it without a jump even where the hand-over blend is off (``enabled`` False), since
    the seed's tokens decode to the seed only up to the tokenizer's error."""

    def __init__(self, config: HandoverConfig, fps: float) -> None:
        self.config = config
        super().__init__(fps)

    def reset(self) -> None:
        self._q = np.zeros((2, NUM_JOINTS, 4))        # output quaternions (x, y, z, w) of frames t-1, t-2
        self._t = np.zeros((2, 3))
        self._e = np.zeros((2, NUM_EXPRESSIONS))
        self._history = 0                              # how many of those are valid (0..2)
        self._off = _Offset.zero()                     # set at the last token boundary
        self._since = self.config.blend_frames         # frames since it was set
        self._seed_off = _Offset.zero()                # set at the first frame after a prime
        self._seed_since = self.config.seed_blend_frames
        self._seed_due = False                         # the next frame joins primed frames
        self._phase = 0                                # index of the next frame within its token

    def prime(self, motion) -> None:
        """The last two frames of `motion` become the history the next frame is joined to (one frame:
        a still pose); that frame is the first frame of a token."""
        last = motion[len(motion) - 2:] if len(motion) >= 2 else Motion.concatenate([motion, motion])
        self._q[::-1] = Rotation.from_rotvec(last.poses.astype(np.float64).reshape(-1, 3)).as_quat().reshape(2, NUM_JOINTS, 4)
        self._t[::-1] = last.trans.astype(np.float64)
        self._e[::-1] = last.expressions.astype(np.float64)
        self._history, self._phase, self._since = 2, 0, self.config.blend_frames
        self._seed_due = self.config.seed_blend_frames > 0

    def _offset_to(self, q: Rotation, trans: np.ndarray, expr: np.ndarray) -> "_Offset":
        """From the frame (q, trans, expr) to where the last two output frames were heading."""
        k = self.config.velocity_keep
        q1, q2 = Rotation.from_quat(self._q[0]), Rotation.from_quat(self._q[1])
        step = q2.inv() * q1  # body-frame rotation per frame
        if k != 1.0:
            step = Rotation.from_rotvec(k * step.as_rotvec())
        return _Offset(((q1 * step) * q.inv()).as_rotvec(), self._t[0] + k * (self._t[0] - self._t[1]) - trans,
                       self._e[0] + k * (self._e[0] - self._e[1]) - expr)

    def _process(self, poses: np.ndarray, trans: np.ndarray, expr: np.ndarray) -> None:
        cfg = self.config
        if not cfg.enabled and not self._seed_due and self._seed_since >= cfg.seed_blend_frames:
            return
        n = len(poses)
        quats = Rotation.from_rotvec(poses.reshape(-1, 3)).as_quat().reshape(n, NUM_JOINTS, 4)
        changed = np.zeros(n, bool)
        i = 0
        while i < n:
            # a run of frames up to the next token boundary: offsets are only ever set at a run's first
            # frame, so each offset is applied to the whole run in one rotation call (scipy treats each
            # rotation alone: the same bits as frame by frame, whatever the run length)
            j = min(n, i + cfg.frames_per_token - self._phase) if cfg.enabled else n
            k = range(j - i)
            if self._seed_due:
                self._seed_off, self._seed_since, self._seed_due = \
                    self._offset_to(Rotation.from_quat(quats[i]), trans[i], expr[i]), 0, False
            s0, f = self._seed_since, cfg.seed_blend_frames
            w = np.array([1.0 - (s0 + x) / f if s0 + x < f else 0.0 for x in k])
            changed[i:j] |= self._seed_off.apply(w, quats[i:j], trans[i:j], expr[i:j])
            self._seed_since += j - i
            if cfg.enabled:
                if self._phase == 0 and self._history == 2:
                    self._off, self._since = self._offset_to(Rotation.from_quat(quats[i]), trans[i], expr[i]), 0
                w = np.array([offset_weight(self._since + x, cfg) for x in k])
                changed[i:j] |= self._off.apply(w, quats[i:j], trans[i:j], expr[i:j])
                self._since += j - i
                self._phase = (self._phase + j - i) % cfg.frames_per_token
            if j - i >= 2:  # the run's last two output frames become the history
                self._q[1], self._t[1], self._e[1] = quats[j - 2], trans[j - 2], expr[j - 2]
            else:
                self._q[1], self._t[1], self._e[1] = self._q[0], self._t[0], self._e[0]
            self._q[0], self._t[0], self._e[0] = quats[j - 1], trans[j - 1], expr[j - 1]
            self._history = min(self._history + j - i, 2)
            i = j
        if changed.any():
            poses[changed] = Rotation.from_quat(quats[changed].reshape(-1, 4)).as_rotvec().reshape(-1, NUM_JOINTS, 3)


class _Offset:
    """An offset of every joint rotation (rotation vectors, applied on the left), the translation
    and the expression coefficients."""

    def __init__(self, rot: np.ndarray, trans: np.ndarray, expr: np.ndarray) -> None:
        self.rot, self.trans, self.expr = rot, trans, expr

    @classmethod
    def zero(cls) -> "_Offset":
        return cls(np.zeros((NUM_JOINTS, 3)), np.zeros(3), np.zeros(NUM_EXPRESSIONS))

    def apply(self, w: np.ndarray, quats: np.ndarray, trans: np.ndarray, expr: np.ndarray) -> np.ndarray:
        """`w[i]` (T,) of the offset added to frame i of `quats` (T, J, 4), `trans` (T, 3), `expr` (T, E),
        in place, for the frames with ``w > 0``; returns that mask."""
        on = w > 0.0
        if not on.any():
            return on
        at = np.flatnonzero(on)
        wa = w[at]
        trans[at] += wa[:, None] * self.trans
        expr[at] += wa[:, None] * self.expr
        rot = Rotation.from_rotvec((wa[:, None, None] * self.rot[None]).reshape(-1, 3))
        quats[at] = (rot * Rotation.from_quat(quats[at].reshape(-1, 4))).as_quat().reshape(len(at), -1, 4)
        return on
