"""Two-bone leg IK: reaches what is reachable, keeps the hip and the knee's side, orients the foot."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from livegesture.body.kinematics import approximate_skeleton, forward_kinematics
from livegesture.cleanup.legs import FK_JOINTS, LEGS, leg_frames, rotation_between, solve_leg
from livegesture.metrics.motion_quality import hinge_angles

SK = approximate_skeleton()
OFF, REST0 = SK.offsets, SK.rest_joints[0]


def pose(knee: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.1, (55, 3))
    p[[4, 5], 0] = knee
    return p, np.array([0.1, 1.3, -0.2])


def legs_of(p, t):
    rot = Rotation.from_rotvec(p[list(FK_JOINTS)]).as_matrix()
    return leg_frames(rot, t, REST0, OFF)


def test_leg_frames_match_forward_kinematics():
    p, t = pose()
    j = forward_kinematics(poses=p[None], trans=t[None])[0]
    for leg, (hip, knee, ankle, foot) in zip(legs_of(p, t), LEGS):
        for got, joint in ((leg.hip_pos, hip), (leg.knee_pos, knee), (leg.ankle_pos, ankle), (leg.foot_pos, foot)):
            np.testing.assert_allclose(got, j[joint], atol=1e-12)


@pytest.mark.parametrize("move", [(0.03, 0.01, 0.02), (-0.05, 0.04, 0.0), (0.0, 0.05, -0.06)])
@pytest.mark.parametrize("s", [0, 1])
def test_reachable_targets_are_reached_exactly(move, s):
    p, t = pose()
    leg = legs_of(p, t)[s]
    target = leg.ankle_pos + np.array(move)
    target_rot = Rotation.from_rotvec([0.0, 0.3, 0.1]).as_matrix() @ leg.ankle_rot
    local, reached, err = solve_leg(leg, target, target_rot, OFF[LEGS[s][2]], 0.0)
    assert err < 1e-9
    q = p.copy()
    q[list(LEGS[s][:3])] = Rotation.from_matrix(local).as_rotvec()
    new = legs_of(q, t)[s]
    np.testing.assert_allclose(new.ankle_pos, target, atol=1e-9)
    np.testing.assert_allclose(new.hip_pos, leg.hip_pos, atol=1e-12)        # the hip does not move
    np.testing.assert_allclose(new.ankle_rot, target_rot, atol=1e-9)       # the foot is re-oriented
    assert hinge_angles(q[None])[0, s] > 0                                  # the knee still bends forwards


def test_out_of_reach_straightens_the_leg_without_bending_it_backwards():
    p, t = pose(knee=0.2)
    leg = legs_of(p, t)[0]
    far = leg.hip_pos + 2.0 * (leg.ankle_pos - leg.hip_pos)
    local, reached, err = solve_leg(leg, far, leg.ankle_rot, OFF[7], 0.0)
    assert err > 0.3
    l1, l2 = np.linalg.norm(OFF[4]), np.linalg.norm(OFF[7])
    assert 0.98 * (l1 + l2) < np.linalg.norm(reached - leg.hip_pos) <= l1 + l2 + 1e-9  # straight, towards it
    np.testing.assert_allclose(np.cross(reached - leg.hip_pos, far - leg.hip_pos), 0.0, atol=1e-9)
    q = p.copy()
    q[[1, 4, 7]] = Rotation.from_matrix(local).as_rotvec()
    assert hinge_angles(q[None])[0, 0] > -15.0


def test_rotation_between():
    rng = np.random.default_rng(0)
    for _ in range(20):
        u, v = (x / np.linalg.norm(x) for x in rng.normal(size=(2, 3)))
        r = rotation_between(u, v)
        np.testing.assert_allclose(r @ u, v, atol=1e-12)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rotation_between(np.array([1.0, 0, 0]), np.array([-1.0, 0, 0])) @ [1, 0, 0],
                               [-1, 0, 0], atol=1e-12)
