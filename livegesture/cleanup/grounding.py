"""Grounding: root control and foot planting in one causal pass (they need each other's state).

Per frame: the legs by forward kinematics of the incoming frame (:mod:`.legs`), contact cues
(:mod:`.contact`), the root moved by :class:`.root.RootFollower` (which discounts the motion of the
planted feet), then the feet planted by :class:`.feet.FootPlanter` on the body as moved. Frame t
uses frames <= t only.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.kinematics import Skeleton, approximate_skeleton
from .config import FootConfig, RootConfig
from .contact import ContactCues
from .feet import FootPlanter
from .legs import FK_JOINTS, LEGS, leg_frames
from .root import RootFollower
from .stage import FrameStage

__all__ = ["Grounding"]


class Grounding(FrameStage):
    """Root control (`root`) and foot planting (`feet`, when enabled) of one session."""

    def __init__(self, root: RootConfig, feet: FootConfig, fps: float, skeleton: Skeleton | None = None
                 ) -> None:
        self.skeleton = skeleton or approximate_skeleton()
        self._rest_root = np.asarray(self.skeleton.rest_joints[0], np.float64)
        self._offsets = np.asarray(self.skeleton.offsets, np.float64)
        self.root_config, self.feet_config = root, feet
        self.cues = ContactCues(fps, feet.floor_rise)
        self.root = RootFollower(root, fps)
        self.feet = FootPlanter(feet, self._offsets)
        super().__init__(fps)

    def reset(self) -> None:
        self.cues.reset()
        self.root.reset()
        self.feet.reset()
        self._solve = self.feet_config.enabled
        self._last_ankles = np.zeros((2, 2))  # input ankle x, z of the last frame

    def prime(self, motion) -> None:
        """Take `motion` as shown: its feet on the floor stay planted where its last frame has them, and
        the root continues (and is anchored, unless an anchor is configured) at its last frame."""
        if len(motion) == 0:
            return
        self._solve = False  # the frames were shown as they are: only follow contact and root
        try:
            self(motion)
        finally:
            self._solve = self.feet_config.enabled
        last = motion[len(motion) - 1:]
        rot = Rotation.from_rotvec(last.poses[0, list(FK_JOINTS)].astype(np.float64)).as_matrix()
        self.feet.restart_at(leg_frames(rot, last.trans[0].astype(np.float64), self._rest_root, self._offsets))
        self.root.restart_at(last.trans[0, [0, 2]].astype(np.float64))

    @property
    def planted(self) -> np.ndarray:
        """(2,) whether the left / right foot is planted after the last frame."""
        return self.feet.planted.copy()

    def _process(self, poses: np.ndarray, trans: np.ndarray, expr: np.ndarray) -> None:
        n = len(poses)
        rot = Rotation.from_rotvec(poses[:, list(FK_JOINTS)].reshape(-1, 3)).as_matrix().reshape(n, -1, 3, 3)
        solved: list[tuple[int, int, np.ndarray]] = []  # (frame, leg, local hip/knee/ankle rotations)
        for i in range(n):
            for s, local in self._step(rot[i], trans[i]):
                solved.append((i, s, local))
        if solved:
            rv = Rotation.from_matrix(np.concatenate([m for _, _, m in solved])).as_rotvec().reshape(-1, 3, 3)
            for (i, s, _), r in zip(solved, rv):
                poses[i, list(LEGS[s][:3])] = r

    def _step(self, rot: np.ndarray, trans: np.ndarray) -> list[tuple[int, np.ndarray]]:
        legs = leg_frames(rot, trans, self._rest_root, self._offsets)
        points = np.array([[leg.ankle_pos, leg.foot_pos] for leg in legs])  # (2, 2, 3)
        started = self.cues.started
        above, speed = self.cues.update(points)
        ankles = points[:, 0, [0, 2]]
        holding = [s for s in range(2) if started and self.feet.holds(s, above[s], speed[s])]
        slide = (ankles[holding] - self._last_ankles[holding]).mean(0) if holding else None
        self._last_ankles = ankles
        xz = self.root.update(trans[[0, 2]].copy(), slide)
        delta = np.array([xz[0] - trans[0], 0.0, xz[1] - trans[2]])
        trans[0], trans[2] = xz
        for leg in legs:
            leg.shift(delta)
        return self.feet.step(legs, above, speed, solve=self._solve)
