"""Forward kinematics: rest pose, hand-checked rotations, batching, real BEAT2 data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from livegesture.body import (PARENTS, Skeleton, approximate_skeleton, fk_matrices,
                              forward_kinematics)
from livegesture.body.constants import FOOT_JOINTS, NUM_JOINTS
from livegesture.body.rotations import axis_angle_to_matrix
from livegesture.motion import Motion


def descendants(j: int) -> set[int]:
    out: set[int] = set()
    for k in range(j + 1, NUM_JOINTS):
        if PARENTS[k] == j or PARENTS[k] in out:
            out.add(k)
    return out


def random_skeleton(rng: np.random.Generator) -> Skeleton:
    rest = approximate_skeleton().rest_joints + rng.normal(0, 0.02, (NUM_JOINTS, 3))
    return Skeleton(rest, exact=False, label="test")


@pytest.mark.parametrize("which", ["approximate", "random"])
def test_zero_pose_gives_rest_joints_plus_trans(which: str, rng: np.random.Generator) -> None:
    sk = approximate_skeleton() if which == "approximate" else random_skeleton(rng)
    trans = rng.normal(0, 1, (7, 3))
    joints = forward_kinematics(poses=np.zeros((7, 55, 3)), trans=trans, skeleton=sk)
    assert joints.shape == (7, 55, 3)
    np.testing.assert_allclose(joints, sk.rest_joints[None] + trans[:, None], atol=1e-12)
    # zero_trans drops the translation
    np.testing.assert_allclose(forward_kinematics(poses=np.zeros((7, 55, 3)), trans=trans,
                                                  skeleton=sk, zero_trans=True),
                               np.broadcast_to(sk.rest_joints, (7, 55, 3)), atol=1e-12)


def test_default_skeleton_is_the_approximate_one() -> None:
    sk = approximate_skeleton()
    assert not sk.exact and "approximate" in sk.label
    np.testing.assert_allclose(forward_kinematics(poses=np.zeros((1, 165))),
                               sk.rest_joints[None], atol=1e-12)


def test_elbow_rotation_moves_only_its_descendants(rng: np.random.Generator) -> None:
    """90 deg about +y at the left elbow: its subtree turns about the elbow, +x -> -z."""
    sk = random_skeleton(rng)
    rest = sk.rest_joints
    poses = np.zeros((1, 55, 3))
    poses[0, 18] = [0, np.pi / 2, 0]
    joints = forward_kinematics(poses=poses, skeleton=sk)[0]
    moved = descendants(18)
    assert 20 in moved and set(range(25, 40)) <= moved
    rot = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # R_y(90 deg)
    for j in range(NUM_JOINTS):
        expected = rest[18] + rot @ (rest[j] - rest[18]) if j in moved else rest[j]
        np.testing.assert_allclose(joints[j], expected, atol=1e-12)
    # the wrist, along +x from the elbow at rest, now points to -z
    d = joints[20] - joints[18]
    assert d[2] < -0.2 and abs(d[0]) < 0.05


def test_rotations_compose_along_the_chain(rng: np.random.Generator) -> None:
    sk = random_skeleton(rng)
    rest = sk.rest_joints
    r_sh, r_el = Rotation.random(random_state=1), Rotation.random(random_state=2)
    poses = np.zeros((1, 55, 3))
    poses[0, 16], poses[0, 18] = r_sh.as_rotvec(), r_el.as_rotvec()
    joints = forward_kinematics(poses=poses, skeleton=sk)[0]
    a, b = r_sh.as_matrix(), (r_sh * r_el).as_matrix()
    elbow = rest[16] + a @ (rest[18] - rest[16])
    wrist = elbow + b @ (rest[20] - rest[18])
    np.testing.assert_allclose(joints[18], elbow, atol=1e-12)
    np.testing.assert_allclose(joints[20], wrist, atol=1e-12)


def test_root_rotation_turns_the_body_about_the_pelvis(rng: np.random.Generator) -> None:
    sk = random_skeleton(rng)
    rest = sk.rest_joints
    poses = np.zeros((2, 55, 3))
    poses[:, 0] = [0, np.pi / 2, 0]
    trans = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    joints = forward_kinematics(poses=poses, trans=trans, skeleton=sk)
    rot = Rotation.from_rotvec([0, np.pi / 2, 0]).as_matrix()
    expected = rest[0] + (rest - rest[0]) @ rot.T
    np.testing.assert_allclose(joints, expected[None] + trans[:, None], atol=1e-12)


def test_bone_lengths_are_preserved(rng: np.random.Generator) -> None:
    sk = random_skeleton(rng)
    poses = Rotation.random(20 * 55, random_state=3).as_rotvec().reshape(20, 55, 3)
    joints = forward_kinematics(poses=poses, trans=rng.normal(0, 1, (20, 3)), skeleton=sk)
    par = np.array(PARENTS[1:])
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, par], axis=-1)
    rest_len = np.linalg.norm(sk.rest_joints[1:] - sk.rest_joints[par], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(rest_len, lengths.shape), atol=1e-10)


def test_batched_shapes_and_input_layouts(rng: np.random.Generator) -> None:
    sk = approximate_skeleton()
    poses = rng.normal(0, 0.3, (2, 5, 55, 3))
    trans = rng.normal(0, 1, (2, 5, 3))
    rest = torch.from_numpy(sk.rest_joints)
    out = fk_matrices(axis_angle_to_matrix(torch.from_numpy(poses)), rest, torch.from_numpy(trans))
    assert out.shape == (2, 5, 55, 3)
    for b in range(2):
        one = forward_kinematics(poses=poses[b], trans=trans[b], skeleton=sk)
        np.testing.assert_allclose(out[b].numpy(), one, atol=1e-12)
        flat = forward_kinematics(poses=poses[b].reshape(5, 165), trans=trans[b], skeleton=sk)
        np.testing.assert_allclose(flat, one, atol=1e-12)
    # a Motion gives the same as its arrays
    m = Motion(poses[0].astype(np.float32), trans[0].astype(np.float32),
               np.zeros((5, 100), np.float32))
    np.testing.assert_allclose(forward_kinematics(m), forward_kinematics(
        poses=m.poses, trans=m.trans), atol=1e-12)
    assert forward_kinematics(poses=np.zeros((0, 55, 3))).shape == (0, 55, 3)


@pytest.mark.parametrize("clip", ["2_scott_0_1_1", "2_scott_0_2_2"])
def test_real_beat2_figure_is_human(beat2_dir, clip: str) -> None:
    m = Motion.load(beat2_dir / f"{clip}.npz")
    j = forward_kinematics(m)
    assert np.isfinite(j).all()
    pelvis_head = np.linalg.norm(j[:, 15] - j[:, 0], axis=-1)
    assert 0.5 < pelvis_head.mean() < 0.8
    for wrist in (20, 21):
        assert np.linalg.norm(j[:, wrist].std(0)) > 0.02, "wrists should move while talking"
    feet_y = j[:, list(FOOT_JOINTS), 1]
    assert -0.1 < feet_y.min() < 0.15 and feet_y.mean() < 0.2, "feet near the floor (y=0)"
    assert (j[:, 15, 1] > j[:, 0, 1] + 0.3).all(), "head above pelvis (Y up)"
