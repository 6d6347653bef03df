"""SMPL-X joints as Unity humanoid bones, in Unity's left-handed coordinates (for VMC).

The 55 SMPL-X joints map one to one onto Unity's ``HumanBodyBones`` (which has 55 bones too),
and the two hierarchies have the same shape (pelvis = Hips, spine1/2/3 = Spine/Chest/UpperChest,
collar = Shoulder, shoulder = UpperArm, elbow = LowerArm, wrist = Hand, hip = UpperLeg,
knee = LowerLeg, ankle = Foot, foot = Toes, finger 1/2/3 = Proximal/Intermediate/Distal,
pinky = Little), so each SMPL-X local rotation is the bone's local rotation.

SMPL-X is right-handed: +Y up, the body facing +Z, +X its left. Unity is left-handed: +Y up, +Z
forward, +X to the right. Mirroring X maps one onto the other (the body faces +Z in both, its left
goes to -X): positions (x, y, z) -> (-x, y, z), quaternions (x, y, z, w) -> (x, -y, -z, w).
At rest every SMPL-X joint frame is aligned with the world (a T-pose), as in a normalised VRM
humanoid, so receivers can apply the local rotations to an avatar as they are.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.constants import JOINT_NAMES, NUM_JOINTS

__all__ = ["HUMANOID_BONES", "jaw_open", "mirror_positions", "mirror_quaternions", "unity_bones"]

_BODY = {
    "pelvis": "Hips", "left_hip": "LeftUpperLeg", "right_hip": "RightUpperLeg", "spine1": "Spine",
    "left_knee": "LeftLowerLeg", "right_knee": "RightLowerLeg", "spine2": "Chest",
    "left_ankle": "LeftFoot", "right_ankle": "RightFoot", "spine3": "UpperChest",
    "left_foot": "LeftToes", "right_foot": "RightToes", "neck": "Neck",
    "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
    "left_shoulder": "LeftUpperArm", "right_shoulder": "RightUpperArm",
    "left_elbow": "LeftLowerArm", "right_elbow": "RightLowerArm", "left_wrist": "LeftHand",
    "right_wrist": "RightHand", "jaw": "Jaw", "left_eye": "LeftEye", "right_eye": "RightEye",
}
_FINGER = {"index": "Index", "middle": "Middle", "pinky": "Little", "ring": "Ring", "thumb": "Thumb"}
_PHALANX = {"1": "Proximal", "2": "Intermediate", "3": "Distal"}


def _unity_name(smplx: str) -> str:
    if smplx in _BODY:
        return _BODY[smplx]
    side, finger = smplx.split("_")
    return side.capitalize() + _FINGER[finger[:-1]] + _PHALANX[finger[-1]]


#: Unity HumanBodyBones name of each SMPL-X joint, in SMPL-X (BEAT2) joint order
HUMANOID_BONES: tuple[str, ...] = tuple(_unity_name(n) for n in JOINT_NAMES)
assert len(set(HUMANOID_BONES)) == NUM_JOINTS

_MIRROR = np.array([-1.0, 1.0, 1.0])
_QMIRROR = np.array([1.0, -1.0, -1.0, 1.0])


def mirror_positions(p: np.ndarray) -> np.ndarray:
    """Right-handed SMPL-X positions (..., 3) <-> left-handed Unity positions (its own inverse)."""
    return np.asarray(p, np.float64) * _MIRROR


def mirror_quaternions(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) x, y, z, w between the two handednesses (its own inverse)."""
    return np.asarray(q, np.float64) * _QMIRROR


def unity_bones(poses: np.ndarray, trans: np.ndarray, rest_joints: np.ndarray,
                offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unity local positions (T, 55, 3) and unit local rotations (T, 55, 4) x, y, z, w of frames.

    A bone's local position is its rest offset from its parent; the Hips' is the pelvis in the
    world (rest pelvis + trans: the root translation), relative to a VMC root at the origin.
    """
    poses = np.asarray(poses, np.float64).reshape(-1, NUM_JOINTS, 3)
    t = len(poses)
    pos = np.broadcast_to(np.asarray(offsets, np.float64), (t, NUM_JOINTS, 3)).copy()
    pos[:, 0] = np.asarray(rest_joints, np.float64)[0] + np.asarray(trans, np.float64).reshape(t, 3)
    quat = Rotation.from_rotvec(poses.reshape(-1, 3)).as_quat().reshape(t, NUM_JOINTS, 4)
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    return mirror_positions(pos), mirror_quaternions(quat)


def jaw_open(poses: np.ndarray, full_open_deg: float) -> np.ndarray:
    """(T,) mouth opening in [0, 1] from the jaw's rotation about its X axis (SMPL-X: positive
    opens the mouth), full at `full_open_deg` degrees."""
    jaw = np.asarray(poses, np.float64).reshape(-1, NUM_JOINTS, 3)[:, JOINT_NAMES.index("jaw"), 0]
    return np.clip(np.degrees(jaw) / float(full_open_deg), 0.0, 1.0)
