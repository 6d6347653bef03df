"""Causal foot-contact cues from the motion itself: height above a running floor estimate and speed.

The lower region's decoded contact features do not tell contact apart (they were ~1 on 93-99% of
generated frames whatever the feet did), so contact is read off the feet: per foot, a floor estimate
for its ankle and its toe (the lowest height seen so far, allowed to rise by ``floor_rise`` m/s so
that one early dip does not fix it for ever), how far each is above its floor, and how fast the
faster of the two moves (3-D, from the previous frame).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ContactCues"]


class ContactCues:
    """Per-session state: floor estimates (2 feet x ankle/toe) and the last positions."""

    def __init__(self, fps: float, floor_rise: float) -> None:
        self.fps, self.rise = float(fps), float(floor_rise)
        self.reset()

    def reset(self) -> None:
        self._started = False
        self._floor = np.zeros((2, 2))
        self._last = np.zeros((2, 2, 3))

    @property
    def started(self) -> bool:
        """Whether a frame was seen (speeds are known from the second frame on)."""
        return self._started

    def update(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`points` (2 feet, (ankle, toe), 3) of this frame -> (heights above their floors (2 feet, ankle /
        toe), speed (2,): of the faster of ankle and toe)."""
        heights = points[..., 1]
        if not self._started:
            self._started = True
            self._floor = heights.copy()
            speed = np.zeros(2)
        else:
            self._floor = np.minimum(self._floor + self.rise / self.fps, heights)
            speed = np.linalg.norm(points - self._last, axis=-1).max(-1) * self.fps
        self._last = points.copy()
        return heights - self._floor, speed
