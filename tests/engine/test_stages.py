"""Per-session output stages: the chain every front end applies to emitted frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from livegesture import Motion
from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.engine import SessionPool
from livegesture.smoothing import SmoothingConfig
from livegesture.stages import FrameBlock, OutputStage, StageContext

from ..test_engine import assert_same_motion, audio_of, model, model_path, run_stream  # noqa: F401


class Recorder(OutputStage):
    """Shifts the translation by its running frame count (stateful, causal) and records its calls."""

    def __init__(self, log: list):
        self.log, self.count = log, 0

    def process(self, block: FrameBlock) -> FrameBlock:
        self.log.append((block.start, len(block), {r: v.shape for r, v in block.regions.items()}))
        m = block.motion[:]
        m.trans = m.trans + (self.count + np.arange(len(m), dtype=np.float32))[:, None]
        self.count += len(m)
        return block.with_motion(m)

    def reset(self) -> None:
        self.count = 0


@dataclass(frozen=True)
class RecorderSpec:
    log: list

    def build(self, ctx: StageContext) -> Recorder:
        assert ctx.fps == 30 and ctx.bundle is not None
        return Recorder(self.log)


class Dropper(OutputStage):
    def process(self, block: FrameBlock) -> FrameBlock:
        return block.with_motion(block.motion[:0])


@dataclass(frozen=True)
class DropperSpec:
    def build(self, ctx: StageContext) -> Dropper:
        return Dropper()


def test_stages_see_consecutive_blocks_with_their_region_features(model):
    a = audio_of(1.5)
    raw, _ = run_stream(model.stream(seed=2), a, [900])
    log: list = []
    got, _ = run_stream(model.stream(seed=2, stages=[RecorderSpec(log)]), a, [900])
    starts = [s for s, _, _ in log]
    assert starts == list(np.cumsum([0] + [n for _, n, _ in log])[:-1])
    assert all(shapes == {r: (n, REGION_DIMS[r]) for r in REGIONS} for _, n, shapes in log)
    np.testing.assert_allclose(got.trans - raw.trans, np.arange(len(raw))[:, None] * np.ones(3), atol=1e-5)
    np.testing.assert_array_equal(got.poses, raw.poses)


def test_smoothing_is_a_stage_applied_after_the_others(model):
    a = audio_of(1.2)
    sm = SmoothingConfig(0.08)
    assert_same_motion(model.generate(a, seed=1, stages=[sm]), model.generate(a, seed=1, smoothing=sm), 0.0)
    log: list = []
    both = model.generate(a, seed=1, stages=[RecorderSpec(log)], smoothing=sm)
    shifted = model.generate(a, seed=1, stages=[RecorderSpec([])])
    from livegesture.smoothing import CausalSmoother

    assert_same_motion(both, CausalSmoother(sm, 30)(shifted), 0.0)


def test_each_pool_session_has_its_own_chain(model):
    a = audio_of(1.0)
    pool = SessionPool(model, capacity=2)
    logs: list[list] = [[], []]
    sids = [pool.open(seed=0, stages=[RecorderSpec(logs[0])]), pool.open(seed=0, stages=[RecorderSpec(logs[1])])]
    pool.push(sids[0], a)
    pool.run()
    pool.push(sids[1], a[:5000])
    pool.run()
    pool.push(sids[1], a[5000:])
    pool.run()
    assert sum(n for _, n, _ in logs[0]) == sum(n for _, n, _ in logs[1]) == pool.frames_emitted(sids[0]) > 0
    assert len(logs[1]) == 2


def test_a_stage_that_drops_frames_is_an_error(model):
    with pytest.raises(RuntimeError, match="keep every frame"):
        model.generate(audio_of(0.5), stages=[DropperSpec()])
    assert len(model.generate(audio_of(0.5), stages=[SmoothingConfig(0.0)])) == 12  # tau 0 builds no stage
    assert isinstance(Motion.empty(), Motion)
