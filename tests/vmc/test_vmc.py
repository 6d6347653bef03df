"""VMC output: the SMPL-X -> Unity humanoid mapping, and a loopback receiver that gets every bone on
every frame with unit quaternions describing the forward-kinematics pose."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.body import JOINT_NAMES, NUM_JOINTS, PARENTS, forward_kinematics
from livegesture.errors import ConfigError, OutputError
from livegesture.motion import Motion
from livegesture.vmc import HUMANOID_BONES, VmcConfig, VmcSender, jaw_open, parse_address

from .receiver import UNITY_BONES, UNITY_PARENT, Receiver, world_joints_from_vmc


def random_motion(rng, frames: int = 10) -> Motion:
    poses = rng.normal(0.0, 0.6, (frames, NUM_JOINTS, 3))
    trans = rng.normal(0.0, 0.3, (frames, 3)) + np.array([0.0, 1.3, 0.0])
    return Motion(poses.astype(np.float32), trans.astype(np.float32), np.zeros((frames, 100), np.float32))


def test_mapping_covers_unity_humanoid_with_the_same_hierarchy():
    assert sorted(HUMANOID_BONES) == sorted(UNITY_BONES) and len(HUMANOID_BONES) == NUM_JOINTS == 55
    for j in range(1, NUM_JOINTS):
        assert UNITY_PARENT[HUMANOID_BONES[j]] == HUMANOID_BONES[PARENTS[j]], JOINT_NAMES[j]
    assert HUMANOID_BONES[JOINT_NAMES.index("left_pinky2")] == "LeftLittleIntermediate"
    assert HUMANOID_BONES[JOINT_NAMES.index("right_thumb3")] == "RightThumbDistal"


@pytest.mark.parametrize("frames", [1, 7, 40])
def test_loopback_every_bone_every_frame_matches_fk(rng, frames):
    m = random_motion(rng, frames)
    with Receiver() as rx, VmcSender(rx.address) as tx:
        tx.send_motion(m, first_index=3)
        rx.wait_for(frames)
        got = rx.frames()
    assert len(got) == frames == tx.frames_sent
    fk = forward_kinematics(m)
    for t, msgs in enumerate(got):
        kinds = [x.address for x in msgs]
        assert kinds[0] == "/VMC/Ext/Root/Pos" and kinds[-4:] == [
            "/VMC/Ext/Blend/Val", "/VMC/Ext/Blend/Apply", "/VMC/Ext/OK", "/VMC/Ext/T"]
        bones = [x for x in msgs if x.address == "/VMC/Ext/Bone/Pos"]
        assert [b.params[0] for b in bones] == list(HUMANOID_BONES)
        q = np.array([b.params[4:8] for b in bones])
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
        world = world_joints_from_vmc(msgs, HUMANOID_BONES)
        np.testing.assert_allclose(world, fk[t], atol=2e-5)  # float32 on the wire
        assert msgs[-1].params[0] == pytest.approx((3 + t) / 30.0)
        assert msgs[-2].params == [1, 3, 0, 1]


def test_handedness_left_is_minus_x_and_rotations_mirror():
    """Unity: the body faces +Z with its left at -X; a rotation about +Y (SMPL-X: turning left,
    towards +X) is, mirrored, a turn towards -X: the quaternion's y flips sign."""
    from livegesture.vmc import unity_bones

    poses = np.zeros((1, NUM_JOINTS, 3))
    poses[0, 0] = [0.0, 0.5, 0.0]
    rest = forward_kinematics(poses=np.zeros((1, NUM_JOINTS, 3)), trans=np.zeros((1, 3)))[0]
    from livegesture.body import approximate_skeleton

    pos, quat = unity_bones(poses, np.zeros((1, 3)), approximate_skeleton().rest_joints,
                            approximate_skeleton().offsets)
    assert pos[0, JOINT_NAMES.index("left_hip"), 0] < 0 < rest[JOINT_NAMES.index("left_hip"), 0]
    np.testing.assert_allclose(quat[0, 0], [0.0, -np.sin(0.25), 0.0, np.cos(0.25)], atol=1e-12)


def test_jaw_blend_value():
    poses = np.zeros((3, NUM_JOINTS, 3))
    poses[:, JOINT_NAMES.index("jaw"), 0] = np.radians([-2.0, 3.0, 20.0])
    np.testing.assert_allclose(jaw_open(poses, 6.0), [0.0, 0.5, 1.0])
    m = Motion(poses.astype(np.float32), np.zeros((3, 3), np.float32), np.zeros((3, 100), np.float32))
    with Receiver() as rx, VmcSender(rx.address, config=VmcConfig(blend_name="aa")) as tx:
        tx.send_motion(m)
        rx.wait_for(3)
        vals = [next(x.params for x in f if x.address == "/VMC/Ext/Blend/Val") for f in rx.frames()]
    assert [v[0] for v in vals] == ["aa"] * 3
    np.testing.assert_allclose([v[1] for v in vals], [0.0, 0.5, 1.0], atol=1e-6)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:", ":39539", "127.0.0.1:0", "127.0.0.1:70000",
                                  "localhost:port"])
def test_malformed_addresses(text):
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(text)


def test_addresses_parse():
    assert parse_address("127.0.0.1:39539") == ("127.0.0.1", 39539)
    assert parse_address("[::1]:39540") == ("::1", 39540)


def test_closed_port_and_unresolvable_host_fail_at_open():
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(OutputError, match=f"nothing receives VMC on UDP 127.0.0.1:{port}"):
        VmcSender(f"127.0.0.1:{port}")
    with pytest.raises(OutputError, match="cannot resolve the VMC host"):
        VmcSender("no-such-host.invalid:39539")


def test_receiver_that_goes_away_is_counted_not_fatal(rng):
    m = random_motion(rng, 3)
    rx = Receiver()
    tx = VmcSender(rx.address)
    rx.close()
    for _ in range(3):           # the first send after the close triggers the refusal
        tx.send_motion(m)
    assert tx.refused >= 1 and tx.frames_sent == 9
    tx.close()
