"""Per-session output stages: causal, stateful post-processing of the frames a session emits.

A session owns a chain of stages built fresh when it opens (every session its own state). Each
time the core emits frames for the session it hands the chain a :class:`FrameBlock` (the new
frames as a :class:`Motion`, the decoded region features they came from, and the index of the
first frame); every stage returns a block of exactly the same frames, possibly changed.

The contract, which keeps the engine's zero look-ahead and streaming == offline guarantees:

* causal: output frame ``t`` depends only on input frames ``<= t`` (no delay, no look-ahead);
* chunking-independent: feeding the frames in any split gives the same output (the state
  between calls is exactly what the next frame needs);
* constant memory: the state does not grow with the stream.

A stage is configured by a *spec*: a frozen dataclass with ``build(ctx) -> OutputStage``
(:class:`livegesture.smoothing.SmoothingConfig` is one; new stages go in this package). Specs are what the public API takes
(``model.stream(stages=[...])``, ``pool.open(stages=[...])``), so a session's chain can be
described in a config file or a protocol message and built per session.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from ..errors import LiveGestureError
from ..motion import Motion

if TYPE_CHECKING:
    from ..bundle import ModelBundle

__all__ = ["FrameBlock", "OutputStage", "StageChain", "StageContext", "StageSpec"]


@dataclass(frozen=True)
class FrameBlock:
    """Frames ``start .. start + len(motion) - 1`` of one session.

    ``regions``: the denormalised region features the frames were decoded from (``upper``,
    ``hands``, ``lower``, ``face``; (n, D_r) float32), e.g. the lower region's foot-contact
    channels; stages that change the motion leave them as they were (they describe the model's
    output, not the post-processed one)."""

    start: int
    motion: Motion
    regions: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.motion)

    def with_motion(self, motion: Motion) -> "FrameBlock":
        return replace(self, motion=motion)


@dataclass(frozen=True)
class StageContext:
    """What a stage may need to build its state: the frame rate, the model file (skeleton shape,
    normalisation stats, tokenizers) and the session's seed."""

    fps: float
    bundle: "ModelBundle"
    seed: int = 0


class OutputStage(ABC):
    """One causal, stateful step of a session's output chain (module doc for the contract)."""

    @abstractmethod
    def process(self, block: FrameBlock) -> FrameBlock:
        """The next frames of the stream, processed (same count and indices)."""

    def reset(self) -> None:
        """Forget the stream (the stage then behaves as freshly built)."""

    def prime(self, motion: Motion) -> None:
        """Continue from `motion`, frames shown just before the session's next frame (a seed pose,
        the end of a previous clip), in place of what the stage saw so far. Default: nothing to do."""

    def state_nbytes(self) -> int:
        """Bytes the stage keeps between calls (constant over a stream)."""
        return 0


class StageSpec(Protocol):
    """A stage's configuration: builds a fresh stage for one session."""

    def build(self, ctx: StageContext) -> OutputStage: ...


class StageChain:
    """A session's stages, applied in order; checks every stage keeps the frames it was given."""

    def __init__(self, stages: Sequence[OutputStage] = ()):
        self.stages = list(stages)

    @classmethod
    def build(cls, specs: Sequence[StageSpec], ctx: StageContext) -> "StageChain":
        chain = []
        for spec in specs:
            if not callable(getattr(spec, "build", None)):
                raise LiveGestureError(f"an output stage must be a spec with build(ctx), got {type(spec).__name__}")
            stage = spec.build(ctx)
            if stage is not None:  # a spec may decide it is a no-op (e.g. smoothing with tau 0)
                chain.append(stage)
        return cls(chain)

    def __len__(self) -> int:
        return len(self.stages)

    def process(self, block: FrameBlock) -> FrameBlock:
        for stage in self.stages:
            out = stage.process(block)
            if len(out) != len(block) or out.start != block.start:
                raise RuntimeError(f"output stage {type(stage).__name__} turned frames {block.start}+{len(block)} "
                                   f"into {out.start}+{len(out)}: stages must keep every frame")
            block = out
        return block

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def prime(self, motion: Motion) -> None:
        """Every stage continues from `motion` (the frames as they were shown)."""
        for stage in self.stages:
            stage.prime(motion)

    def state_nbytes(self) -> int:
        return sum(stage.state_nbytes() for stage in self.stages)
