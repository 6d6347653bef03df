"""Settings of the clean-up stages (frozen dataclasses; the defaults are what `generate`, sessions
and the server use)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ConfigError

ROOT_MODES = ("anchor", "in_place", "raw")


def _check(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"clean-up setting {name} must be in [{low:g}, {high:g}], got {value!r}")


@dataclass(frozen=True)
class HandoverConfig:
    """Token hand-over blend: at the first frame of each token, the offset from where the previous
    frames were heading (their velocity, times `velocity_keep`) to the decoded frame is added with
    weight `boundary_weight`, falling linearly to 0 over `blend_frames` frames (no low-pass, so no
    lag: the decoded pose is reached within the token)."""

    enabled: bool = True
    frames_per_token: int = 4
    blend_frames: int = 3
    boundary_weight: float = 0.5
    velocity_keep: float = 1.0
    # a session started from seed motion: its first frame continues the seed, the difference fading
    # over this many frames (done even when `enabled` is False; 0 = not at all)
    seed_blend_frames: int = 12

    def __post_init__(self) -> None:
        _check("handover.frames_per_token", self.frames_per_token, 1, 64)
        _check("handover.blend_frames", self.blend_frames, 1, 64)
        _check("handover.velocity_keep", self.velocity_keep, 0.0, 1.0)
        _check("handover.boundary_weight", self.boundary_weight, 0.0, 1.0)
        _check("handover.seed_blend_frames", self.seed_blend_frames, 0, 300)


@dataclass(frozen=True)
class RootConfig:
    """Horizontal root control. ``anchor`` (default): the root follows the model's motion less the
    motion of planted feet (beyond `slide_deadband` m/s), is pulled back towards `anchor` (x, z in
    metres; None = where the stream starts) with time constant `pull_seconds` while no foot is
    planted, and is never shown further than `radius` from it. ``in_place``: x / z
    are 0 (the figure stays at the origin). ``raw``: the model's root as it is."""

    mode: str = "anchor"
    anchor: tuple[float, float] | None = None
    pull_seconds: float = 4.0
    # shown within 1 m of the anchor; softly from half of it (a tighter bound compressed real steps:
    # 2_scott_0_1_1's mean foot slide in contact rose from 0.021 to 0.023 m/s at 0.6 m)
    radius: float = 1.0
    # planted-feet motion slower than this (m/s) is left in the root: taking out motion-capture creep
    # too raised 2_scott_0_1_1's mean foot slide to 0.021 m/s (0.015 with it, real 0.020)
    slide_deadband: float = 0.005

    def __post_init__(self) -> None:
        if self.mode not in ROOT_MODES:
            raise ConfigError(f"root mode must be one of {', '.join(ROOT_MODES)}, got {self.mode!r}")
        _check("root.pull_seconds", self.pull_seconds, 0.05, 3600.0)
        _check("root.radius", self.radius, 0.01, 100.0)
        _check("root.slide_deadband", self.slide_deadband, 0.0, 1.0)
        if self.anchor is not None:
            a = tuple(float(v) for v in self.anchor)
            if len(a) != 2 or not all(math.isfinite(v) for v in a):
                raise ConfigError(f"root anchor must be two finite numbers (x, z), got {self.anchor!r}")
            object.__setattr__(self, "anchor", a)


@dataclass(frozen=True)
class FootConfig:
    """Foot planting. A foot is planted when its ankle and toe are within `contact_height` of the
    floor (a running minimum of their heights) and move slower than `contact_speed`; it keeps its
    horizontal position and heading (leg IK; height, pitch and roll stay the model's) until the
    model's foot rises above `release_height`, moves faster than `release_speed`, gets `max_slip`
    away horizontally or turns by `max_turn_deg`; then it returns to the model's foot over
    `release_frames` frames. Out of the leg's reach it gives way just as far as needed."""

    enabled: bool = True
    contact_height: float = 0.03
    contact_speed: float = 0.3
    release_height: float = 0.05
    release_speed: float = 0.8
    max_slip: float = 0.12
    max_turn_deg: float = 35.0
    release_frames: int = 6
    floor_rise: float = 0.01        # m/s the running floor estimate may rise (it falls at once)
    max_hyperextension_deg: float = 0.0  # knee hyperextension allowed beyond what the model gave

    def __post_init__(self) -> None:
        for name in ("contact_height", "contact_speed", "release_height", "release_speed", "max_slip",
                     "floor_rise"):
            _check(f"feet.{name}", getattr(self, name), 0.0, 10.0)
        _check("feet.max_turn_deg", self.max_turn_deg, 0.0, 180.0)
        _check("feet.release_frames", self.release_frames, 1, 300)
        _check("feet.max_hyperextension_deg", self.max_hyperextension_deg, 0.0, 45.0)
        if self.release_height < self.contact_height or self.release_speed < self.contact_speed:
            raise ConfigError("feet: release_height / release_speed must be >= contact_height / "
                                   "contact_speed (hysteresis)")


@dataclass(frozen=True)
class CleanupConfig:
    """Which clean-up stages run, in this order: token hand-over blend, root control, foot planting.
    ``CleanupConfig.off()`` is the raw model output."""

    handover: HandoverConfig = field(default_factory=HandoverConfig)
    root: RootConfig = field(default_factory=RootConfig)
    feet: FootConfig = field(default_factory=FootConfig)

    @classmethod
    def off(cls) -> "CleanupConfig":
        return cls(HandoverConfig(enabled=False), RootConfig(mode="raw"), FootConfig(enabled=False))

    @property
    def active(self) -> bool:
        return self.handover.enabled or self.root.mode != "raw" or self.feet.enabled

    def build(self, ctx):
        """The session's clean-up stage (:mod:`livegesture.stages` spec); None when everything is off."""
        if not self.active:
            return None
        from .chain import Cleanup

        return Cleanup(self, ctx.fps)
