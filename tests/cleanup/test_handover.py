"""Token hand-over blend: removes the jumps at token boundaries without the lag of a low-pass."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture import LiveGestureError
from livegesture.cleanup import HandoverConfig, TokenHandover
from livegesture.cleanup.handover import offset_weight
from livegesture.metrics.motion_quality import boundary_ratio, trajectory_shift, wrist_speed
from livegesture.smoothing import CausalSmoother, SmoothingConfig

from .motions import jumpy, standing


def test_it_joins_tokens_without_lag():
    m = jumpy(360, jump=0.01)  # wrist speed across boundaries ~1.9x that inside, as the demo model's
    out = TokenHandover(HandoverConfig(), 30)(m)
    before, after = boundary_ratio(wrist_speed(m)), boundary_ratio(wrist_speed(out))
    assert before > 1.5
    assert 0.85 < after < 1.15
    low = CausalSmoother(SmoothingConfig(0.08), 30)(m)
    assert trajectory_shift(m, low) >= 1.0             # the low-pass trails by over a frame
    assert abs(trajectory_shift(m, out)) <= 0.5        # the blend does not


def test_the_decoded_pose_is_reached_within_each_token():
    cfg = HandoverConfig()
    assert [offset_weight(k, cfg) for k in range(4)] == [0.5, pytest.approx(1 / 3), pytest.approx(1 / 6), 0.0]
    m = jumpy(120)
    out = TokenHandover(cfg, 30)(m)
    last = np.arange(len(m)) % 4 == 3  # the blend is over by the last frame of every token
    np.testing.assert_array_equal(out.poses[last], m.poses[last])
    np.testing.assert_array_equal(out.trans[last], m.trans[last])
    assert np.abs(out.poses[~last] - m.poses[~last]).max() > 0.01


def test_continuous_motion_is_left_almost_as_it_is():
    m = standing(240)  # smooth: no jumps at token boundaries
    out = TokenHandover(HandoverConfig(), 30)(m)
    # constant-velocity extrapolation misses by the acceleration: the change stays below it
    for k in ("poses", "trans", "expressions"):
        x, y = getattr(m, k), getattr(out, k)
        assert np.abs(y - x).max() <= np.abs(np.diff(x, 2, axis=0)).max(), k


def test_prime_blends_the_first_token_from_the_given_frames():
    seed = standing(8)
    m = standing(40, seed=5)
    m.poses += np.float32(0.2)  # the stream starts away from the seed's pose
    h = TokenHandover(HandoverConfig(), 30)
    h.prime(seed)
    out = h(m)
    cold = TokenHandover(HandoverConfig(), 30)(m)
    np.testing.assert_array_equal(cold.poses[:4], m.poses[:4])  # nothing to join without history
    jump = lambda x: np.abs(x.poses[0] - seed.poses[-1]).max()  # noqa: E731
    assert jump(out) < 0.6 * jump(m)


def test_config_checks():
    with pytest.raises(LiveGestureError, match="boundary_weight"):
        HandoverConfig(boundary_weight=1.5)
    with pytest.raises(LiveGestureError, match="blend_frames"):
        HandoverConfig(blend_frames=0)
