"""Foot planting: feet stay where they touch the floor, by a causal two-bone leg IK.

A foot is planted when its ankle and toe are within ``contact_height`` of the floor and move
slower than ``contact_speed`` (:mod:`.contact`). A planted foot keeps where it stands on the
floor, its horizontal position and heading (the model's foot height, pitch and roll are kept, so
heels and toes still lift and nothing sinks or floats; a heel that rises pivots the foot on its
planted toe), by re-solving the leg (:mod:`.legs`: knee
about its hinge, hip swing, ankle re-oriented). It lets go when the model's foot is lifted
(``release_height``), moves fast (``release_speed``), has slid ``max_slip`` away, turned
``max_turn_deg``; where the leg cannot reach, the foot gives way towards the model's foot just as
much as the leg's length forces. A foot let go returns to the model's over
``release_frames`` frames (smoothstep) and may plant again after that. A free foot that is not
returning is passed through untouched.
"""

from __future__ import annotations

import math

import numpy as np

from .config import FootConfig
from .handover import fade
from .legs import LEGS, LegFrame, solve_leg

__all__ = ["FootPlanter"]

_REACH_TOLERANCE_M = 0.01


def _wrap(angle: float) -> float:
    """`angle` in (-pi, pi]."""
    return math.atan2(math.sin(angle), math.cos(angle))


def _turn_y(angle: float) -> np.ndarray:
    """Rotation by `angle` about the world's vertical (+y) axis."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class FootPlanter:
    """Per-session lock state of both feet: planted or not, where, and the return still to go."""

    def __init__(self, config: FootConfig, offsets: np.ndarray) -> None:
        self.config = config
        self._offsets = offsets
        self.reset()

    def reset(self) -> None:
        self.planted = np.zeros(2, bool)
        self._lock = np.zeros((2, 5))           # planted ankle x, z, heading, toe x, z
        self._release = np.zeros(2, np.int64)   # frames of the return to the model's foot still to go
        self._from = np.zeros((2, 3))           # ankle x, z and heading where that return started

    def _here(self, s: int, leg: LegFrame) -> np.ndarray:
        """Ankle x, z, heading, toe x, z of foot `s` as the model has it."""
        return np.array([leg.ankle_pos[0], leg.ankle_pos[2], self.heading(s, leg.ankle_rot),
                         leg.foot_pos[0], leg.foot_pos[2]])

    def restart_at(self, legs: tuple[LegFrame, LegFrame]) -> None:
        """The frame of `legs` was shown as it is: planted feet stay where it has them, none is returning."""
        for s, leg in enumerate(legs):
            if self.planted[s]:
                self._lock[s] = self._here(s, leg)
        self._release[:] = 0

    def heading(self, s: int, ankle_rot: np.ndarray) -> float:
        """Heading (rad about +y) of the ankle-to-toe direction of foot `s`."""
        f = ankle_rot @ self._offsets[LEGS[s][3]]
        return math.atan2(f[0], f[2])

    def holds(self, s: int, above: np.ndarray, speed: float) -> bool:
        """Whether planted foot `s` stays planted by its height (`above`: ankle, toe above their floors)
        and speed (before slip and reach)."""
        c = self.config
        return bool(self.planted[s]) and float(above.max()) <= c.release_height and speed <= c.release_speed

    def _planted_ankle(self, s: int, above: np.ndarray, turned: np.ndarray) -> np.ndarray:
        """Where the planted foot's ankle goes (x, z) for the foot rotation `turned`: the ankle's planted
        place, or, as the heel rises above the toe, the place that keeps the toe where it was planted
        (a foot pivots on its toe; 2 cm of height difference hand over completely)."""
        lock = self._lock[s]
        toe = turned @ self._offsets[LEGS[s][3]]
        beta = min(1.0, max(0.0, 0.5 + (float(above[0]) - float(above[1])) / 0.04))
        return np.array([(1.0 - beta) * lock[0] + beta * (lock[3] - toe[0]),
                         (1.0 - beta) * lock[1] + beta * (lock[4] - toe[2])])

    def step(self, legs: tuple[LegFrame, LegFrame], above: np.ndarray, speed: np.ndarray,
             solve: bool = True) -> list[tuple[int, np.ndarray]]:
        """One frame: update the locks from the legs as the model (and root control) put them (`above`
        (2 feet, ankle / toe) heights above the floor, `speed` (2,)); the legs to re-solve with their new
        local hip, knee and ankle rotations (none when not `solve`)."""
        cfg = self.config
        out = []
        for s, leg in enumerate(legs):
            here = self._here(s, leg)
            target = None
            if self.planted[s]:
                turned = _turn_y(_wrap(self._lock[s, 2] - here[2])) @ leg.ankle_rot
                ankle = self._planted_ankle(s, above[s], turned)
                if (not self.holds(s, above[s], speed[s])
                        or math.hypot(ankle[0] - here[0], ankle[1] - here[1]) > cfg.max_slip
                        or abs(_wrap(self._lock[s, 2] - here[2])) > math.radians(cfg.max_turn_deg)):
                    self._let_go(s, np.array([ankle[0], ankle[1], self._lock[s, 2]]))
                else:
                    target = (ankle, turned)
            elif self._release[s] == 0 and float(above[s].max()) < cfg.contact_height and speed[s] < cfg.contact_speed:
                self.planted[s] = True
                self._lock[s] = here
                continue  # planted where the model's foot is now: this frame is unchanged
            if target is None and self._release[s] > 0:
                w = fade(cfg.release_frames - int(self._release[s]) + 1, cfg.release_frames)
                self._release[s] -= 1
                f = self._from[s]
                target = (np.array([here[0] + w * (f[0] - here[0]), here[1] + w * (f[1] - here[1])]),
                          _turn_y(w * _wrap(f[2] - here[2])) @ leg.ankle_rot)
            if target is None or not solve:
                continue
            pos = np.array([target[0][0], leg.ankle_pos[1], target[0][1]])
            local, reached, err = solve_leg(leg, pos, target[1], self._offsets[LEGS[s][2]],
                                            math.radians(cfg.max_hyperextension_deg), leg.ankle_pos)
            if self.planted[s]:
                # out of reach the foot gave way towards the model's (as little as the leg forced)
                gave = np.array([reached[0] - pos[0], reached[2] - pos[2]])
                self._lock[s, [0, 1]] += gave
                self._lock[s, [3, 4]] += gave
                if err > _REACH_TOLERANCE_M:  # still out of reach: let go from where it got
                    self._let_go(s, np.array([reached[0], reached[2], self._lock[s, 2]]))
            out.append((s, local))
        return out

    def _let_go(self, s: int, start: np.ndarray) -> None:
        self.planted[s] = False
        self._release[s] = self.config.release_frames
        self._from[s] = start
