"""Root control: a root that stays near where it started, however long the stream runs.

The model integrates its root from per-frame velocities (docs/design.md §2), so small biases add
up: minutes of generated motion wandered metres away, mostly by sliding the whole body over the
floor with the feet "planted". In ``anchor`` mode (the default):

- while feet are planted, the root moves by the model's root motion minus the horizontal motion
  of the planted feet (their mean, less a ``slide_deadband`` of creep): a body sliding over
  planted feet is held, a pelvis swaying above them is kept (the feet stage then holds the feet
  exactly);
- while no foot is planted (steps), it leaks back towards the anchor (x, z; None = where the
  stream starts) with time constant ``pull_seconds``;
- the position shown is softly bounded to ``radius`` around the anchor (identity up to half the
  radius, then a tanh knee).

``in_place`` zeroes x / z (the meaning of ``--root-in-place``); ``raw`` passes the model's root
through. The height (y) is never changed. Causal: frame t uses frames <= t.
"""

from __future__ import annotations

import math

import numpy as np

from .config import RootConfig

__all__ = ["RootFollower", "soft_bound"]


def soft_bound(offset: np.ndarray, radius: float) -> np.ndarray:
    """`offset` (2,) unchanged up to radius / 2, then smoothly compressed to stay below `radius`."""
    r = math.sqrt(float(offset @ offset))
    half = 0.5 * radius
    if r <= half:
        return offset
    return offset * ((half + half * math.tanh((r - half) / half)) / r)


class RootFollower:
    """Per-session state: the anchor, the last input position and the corrected position (x, z)."""

    def __init__(self, config: RootConfig, fps: float) -> None:
        self.config = config
        self.fps = float(fps)
        self._keep = math.exp(-1.0 / (fps * config.pull_seconds))
        self.reset()

    def reset(self) -> None:
        self._started = False
        self._anchor = np.zeros(2)
        self._last_in = np.zeros(2)
        self._pos = np.zeros(2)

    def _skate(self, slide: np.ndarray) -> np.ndarray:
        """The part of the planted feet's motion `slide` (2,) taken out of the root: all but the first
        ``slide_deadband`` m/s (slower creep, e.g. motion-capture jitter, is left as it is)."""
        speed = math.hypot(float(slide[0]), float(slide[1])) * self.fps
        if speed <= self.config.slide_deadband:
            return np.zeros(2)
        return slide * (1.0 - self.config.slide_deadband / speed)

    def restart_at(self, xz: np.ndarray) -> None:
        """Continue from root position `xz` (2,) as if it had just been shown; without a configured
        anchor, that is the anchor."""
        self._started = True
        self._anchor = np.array(self.config.anchor) if self.config.anchor is not None else xz.copy()
        self._pos, self._last_in = xz.copy(), xz.copy()

    def update(self, xz: np.ndarray, slide: np.ndarray | None) -> np.ndarray:
        """The root x, z to show for input root `xz` (2,); `slide` (2,) is the mean horizontal motion of
        the planted feet since the last frame, None when no foot is planted."""
        cfg = self.config
        if cfg.mode == "raw":
            return xz
        if cfg.mode == "in_place":
            return np.zeros(2)
        if not self._started:
            self._started = True
            self._anchor = np.array(cfg.anchor) if cfg.anchor is not None else xz.copy()
            self._pos = xz.copy()
        elif slide is not None:
            self._pos = self._pos + (xz - self._last_in) - self._skate(slide)
        else:
            self._pos = self._anchor + self._keep * (self._pos + (xz - self._last_in) - self._anchor)
        self._last_in = xz.copy()
        return self._anchor + soft_bound(self._pos - self._anchor, cfg.radius)
