"""Motion-quality measures on clips whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture import Motion
from livegesture.body.kinematics import forward_kinematics
from livegesture.metrics.motion_quality import (boundary_ratio, floor_penetration, foot_contact, foot_slide,
                                                hinge_angles, joint_limit_violations, motion_quality,
                                                root_excursion, trajectory_shift)


def still(n: int = 60, height: float = 1.3) -> Motion:
    trans = np.zeros((n, 3), np.float32)
    trans[:, 1] = height
    return Motion(np.zeros((n, 55, 3), np.float32), trans, np.zeros((n, 100), np.float32))


def test_a_still_figure_stands_in_contact_without_sliding():
    q = motion_quality(still())
    assert q["contact_any"] == 1.0 and q["contact_joint"] == 1.0
    assert q["slide_median"] == 0.0 and q["root_max"] == 0.0
    assert q["limit_violations"] == 0.0 and q["floor_share"] == 0.0


def test_a_skating_figure_slides_at_its_speed():
    m = still(90)
    m.trans[:, 0] = np.arange(90) * 0.1 / 30  # 0.1 m/s along x, feet on the floor
    j = forward_kinematics(m)
    slide = foot_slide(j, foot_contact(j), 30)
    np.testing.assert_allclose(slide, 0.1, rtol=1e-4)
    assert root_excursion(m.trans.astype(np.float64)) == pytest.approx((8.9 * 0.1 / 3, 8.9 * 0.1 / 3), rel=1e-5)


def test_contact_needs_the_lowest_height_and_a_small_vertical_step():
    m = still(40)
    m.trans[20:, 1] += 0.05          # the whole figure 5 cm up: no longer near its lowest height
    m.trans[10, 1] += 0.015          # 1.5 cm up for one frame: near the floor but stepping > 1 cm
    c = foot_contact(forward_kinematics(m))
    assert c[:10].all() and not c[10].any() and not c[11].any() and not c[20:].any()


def test_boundary_ratio():
    speed = np.ones(40)
    assert boundary_ratio(speed) == 1.0
    speed[3::4] = 3.0  # every step from a token's last frame to the next token's first
    assert boundary_ratio(speed) == pytest.approx(3.0)
    assert boundary_ratio(speed, phase=1) == pytest.approx(1.0 / ((1 + 1 + 3) / 3))


@pytest.mark.parametrize("joint, axis, sign", [(4, 0, 1), (5, 0, 1), (18, 1, -1), (19, 1, 1)])
def test_hinge_sign_knees_and_elbows(joint, axis, sign):
    p = np.zeros((2, 55, 3))
    p[0, joint, axis] = sign * 0.8   # the anatomical bend
    p[1, joint, axis] = -sign * 0.8  # backwards
    k = [4, 5, 18, 19].index(joint)
    h = hinge_angles(p)[:, k]
    assert h[0] > 30 and h[1] < -30
    assert joint_limit_violations(p[:1]) == 0.0 and joint_limit_violations(p[1:]) == 1.0


def test_floor_penetration():
    m = still(10, height=1.0)  # ankles ~22 cm below y = 0
    share, depth = floor_penetration(forward_kinematics(m))
    assert share == 1.0 and 0.1 < depth < 0.4


def test_trajectory_shift_finds_a_delay():
    rng = np.random.default_rng(0)
    m = still(200)
    t = np.arange(200)
    m.poses[:, 16:22] = (0.5 * np.sin(2 * np.pi * 1.3 * t / 30)[:, None, None] * rng.normal(0, 1, (6, 3)))
    late = m[:]
    late.poses = np.concatenate([m.poses[:2], m.poses[:-2]])  # 2 frames behind
    assert trajectory_shift(m, late) == pytest.approx(2.0, abs=0.11)
    assert trajectory_shift(m, m) == 0.0
