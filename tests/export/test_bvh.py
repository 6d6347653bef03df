"""BVH export: hierarchy/header checks and a round trip through the independent reader bvhio."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from livegesture.body import JOINT_NAMES, NUM_JOINTS, PARENTS, Skeleton, approximate_skeleton
from livegesture.body import forward_kinematics
from livegesture.export import bvh_euler_angles, write_bvh
from livegesture.motion import Motion

bvhio = pytest.importorskip("bvhio")


def _motion(rng, frames: int = 4, fps: float = 30.0) -> Motion:
    poses = rng.normal(0.0, 0.7, (frames, NUM_JOINTS, 3))
    trans = rng.normal(0.0, 0.4, (frames, 3)) + np.array([0.0, 1.0, 0.0])
    return Motion(poses.astype(np.float32), trans.astype(np.float32),
                  np.zeros((frames, 100), np.float32), fps=fps)


def _bvh_world_positions(path) -> np.ndarray:
    """(T, 55, 3) global joint positions as bvhio computes them, in JOINT_NAMES order."""
    root = bvhio.readAsHierarchy(str(path))
    layout = [j for j, _, _ in root.layout()]
    order = [JOINT_NAMES.index(j.Name) for j in layout]
    frames = bvhio.readAsBvh(str(path)).FrameCount
    out = np.zeros((frames, NUM_JOINTS, 3))
    for f in range(frames):
        root.loadPose(f)
        out[f, order] = [np.array(j.PositionWorld) for j in layout]
    return out


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YZX"])
def test_round_trip_random_poses(tmp_path, rng, order):
    m = _motion(rng)
    path = write_bvh(m, tmp_path / "a.bvh", channel_order=order, units="cm")
    got = _bvh_world_positions(path)
    ref = forward_kinematics(m) * 100.0
    np.testing.assert_allclose(got, ref, atol=1e-4 * 100.0)  # 0.1 mm, in cm


@pytest.mark.parametrize("units,scale", [("m", 1.0), ("mm", 1000.0), ("in", 1 / 0.0254), (2.5, 2.5)])
def test_units(tmp_path, rng, units, scale):
    m = _motion(rng, frames=3)
    got = _bvh_world_positions(write_bvh(m, tmp_path / "a.bvh", units=units))
    np.testing.assert_allclose(got, forward_kinematics(m) * scale, atol=1e-6 * scale)


def test_default_units_are_metres(tmp_path, rng):
    """Blender's BVH importer (scale 1.0) reads BVH units as metres: the default gives a human size."""
    m = _motion(rng, frames=2)
    bvh = bvhio.readAsBvh(str(write_bvh(m, tmp_path / "a.bvh")))
    offsets = {j.Name: np.array(j.Offset) for j, _, _ in bvh.Root.layout()}
    np.testing.assert_allclose(offsets["left_knee"], approximate_skeleton().offsets[4], atol=1e-6)


def test_round_trip_metres_and_custom_skeleton(tmp_path, rng):
    m = _motion(rng, frames=3)
    rest = approximate_skeleton().rest_joints * 1.1 + rng.normal(0, 0.01, (NUM_JOINTS, 3))
    sk = Skeleton(rest, exact=True, label="test")
    path = write_bvh(m, tmp_path / "a.bvh", skeleton=sk, units="m")
    bvh = bvhio.readAsBvh(str(path))
    offsets = {j.Name: np.array(j.Offset) for j, _, _ in bvh.Root.layout()}
    for j in range(1, NUM_JOINTS):
        np.testing.assert_allclose(offsets[JOINT_NAMES[j]], sk.offsets[j], atol=1e-6)
    np.testing.assert_allclose(_bvh_world_positions(path), forward_kinematics(m, skeleton=sk),
                               atol=1e-4)


def test_root_in_place(tmp_path, rng):
    m = _motion(rng, frames=5)
    path = write_bvh(m, tmp_path / "a.bvh", root_in_place=True, units="cm")
    got = _bvh_world_positions(path)
    flat = replace(m, trans=m.trans * np.array([0, 1, 0], np.float32))
    np.testing.assert_allclose(got, forward_kinematics(flat) * 100.0, atol=1e-2)
    rest_pelvis = approximate_skeleton().rest_joints[0] * 100.0
    np.testing.assert_allclose(got[:, 0, [0, 2]], np.tile(rest_pelvis[[0, 2]], (5, 1)), atol=1e-4)
    np.testing.assert_allclose(got[:, 0, 1], (m.trans[:, 1] + rest_pelvis[1] / 100) * 100, atol=1e-3)


def test_single_frame(tmp_path, rng):
    m = _motion(rng, frames=1)
    path = write_bvh(m, tmp_path / "one.bvh", units="cm")
    bvh = bvhio.readAsBvh(str(path))
    assert bvh.FrameCount == 1
    np.testing.assert_allclose(_bvh_world_positions(path), forward_kinematics(m) * 100, atol=1e-2)


def test_hierarchy_and_header(tmp_path, rng):
    m = _motion(rng, frames=7, fps=25.0)
    path = write_bvh(m, tmp_path / "a.bvh", channel_order="XYZ", units="cm")
    bvh = bvhio.readAsBvh(str(path))
    layout = bvh.Root.layout()
    assert len(layout) == NUM_JOINTS
    assert sorted(j.Name for j, _, _ in layout) == sorted(JOINT_NAMES)
    assert bvh.FrameCount == 7 and bvh.FrameTime == pytest.approx(1 / 25.0, abs=1e-8)
    parent_of = {}
    for j, _, _ in layout:
        for c in j.Children:
            parent_of[c.Name] = j.Name
    for j in range(1, NUM_JOINTS):
        assert parent_of[JOINT_NAMES[j]] == JOINT_NAMES[PARENTS[j]]
    root = bvh.Root
    assert root.Name == "pelvis" and np.allclose(np.array(root.Offset), 0)
    assert root.Channels == ["Xposition", "Yposition", "Zposition",
                             "Xrotation", "Yrotation", "Zrotation"]
    assert all(j.Channels == ["Xrotation", "Yrotation", "Zrotation"] for j, _, _ in layout[1:])
    text = path.read_text()
    leaves = sum(1 for j in range(NUM_JOINTS) if j not in PARENTS)
    assert text.count("End Site") == leaves == 2 + 3 + 10  # feet, jaw + eyes, finger tips
    rows = text.split("Frame Time:")[1].strip().splitlines()[1:]
    assert len(rows) == 7 and all(len(r.split()) == 3 + 3 * NUM_JOINTS for r in rows)
    offsets = {j.Name: np.array(j.Offset) for j, _, _ in layout}
    np.testing.assert_allclose(offsets["left_knee"], approximate_skeleton().offsets[4] * 100, atol=1e-5)


def test_euler_convention_is_intrinsic_in_channel_order(rng):
    rv = rng.normal(0, 1.0, (6, 2, 3))
    for order in ("ZXY", "XYZ", "YXZ"):
        ang = np.radians(bvh_euler_angles(rv, order, continuous=False))
        mats = [[np.eye(3)] * 2 for _ in range(6)]
        for k, axis in enumerate(order):  # BVH: R = R_a(ch0) @ R_b(ch1) @ R_c(ch2)
            r_k = Rotation.from_rotvec(np.eye(3)["XYZ".index(axis)] * ang[..., k, None].reshape(-1, 1))
            mats = np.asarray(mats) @ r_k.as_matrix().reshape(6, 2, 3, 3)
        np.testing.assert_allclose(mats, Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix()
                                   .reshape(6, 2, 3, 3), atol=1e-9)


def test_euler_angles_are_continuous_over_time():
    # a joint turning steadily about a tilted axis through +-180 degrees and beyond
    t = np.linspace(0, 2 * np.pi * 1.5, 200)
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    mats = Rotation.from_rotvec(t[:, None] * axis)
    rv = mats.as_rotvec()[:, None, :]
    ang = bvh_euler_angles(rv, "ZXY")
    assert np.abs(np.diff(ang[:, 0], axis=0)).max() < 10.0
    back = Rotation.from_euler("ZXY", ang[:, 0], degrees=True)
    np.testing.assert_allclose(back.as_matrix(), mats.as_matrix(), atol=1e-9)
    raw = bvh_euler_angles(rv, "ZXY", continuous=False)
    assert np.abs(np.diff(raw[:, 0], axis=0)).max() > 90.0  # scipy's wrapped angles jump


def test_bad_arguments(tmp_path, rng):
    m = _motion(rng, frames=2)
    with pytest.raises(ValueError, match="channel_order"):
        write_bvh(m, tmp_path / "a.bvh", channel_order="ZZY")
    with pytest.raises(ValueError, match="positive"):
        write_bvh(m, tmp_path / "a.bvh", units=0)
    with pytest.raises(ValueError, match="units must be one of m, cm"):
        write_bvh(m, tmp_path / "a.bvh", units="feet")


@pytest.mark.realdata
def test_round_trip_real_clip(tmp_path, beat2_dir):
    m = Motion.load(beat2_dir / "2_scott_0_1_1.npz")[::25]  # 77 frames spread over the clip
    path = write_bvh(m, tmp_path / "scott.bvh", units="cm")
    assert bvhio.readAsBvh(str(path)).FrameCount == len(m)
    got = _bvh_world_positions(path)
    np.testing.assert_allclose(got, forward_kinematics(m) * 100.0, atol=1e-4 * 100.0)
    assert got[:, JOINT_NAMES.index("head"), 1].min() > got[:, 0, 1].max()  # upright
