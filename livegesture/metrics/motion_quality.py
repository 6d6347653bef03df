"""Physical plausibility of a clip: foot slide while in contact, contact share, root excursion,
token-boundary jumps, joints bending backwards, feet below the floor (not BEAT2 table metrics).

What an avatar shows that the paper's table does not: feet that skate, a root that wanders off,
a jerk every 133 ms where one token hands over to the next. Definitions (issue 14):

- contact: a foot joint (ankles 7, 8, feet 10, 11) within 2 cm of its lowest height in the
  clip and moving less than 1 cm vertically since the previous frame;
- foot slide: horizontal speed (m/s) of a foot joint on the frames it is in contact;
- root excursion: the largest horizontal distance of the root translation from frame 0;
- boundary ratio: mean wrist speed (root fixed) from the last frame of a token to the first of
  the next over that between frames inside tokens (about 1 for real motion);
- joint-limit violation: a knee or elbow bent backwards by more than 15 degrees (its hinge angle,
  measured from the rest pose's bone direction, on the wrong side);
- floor penetration: a foot joint below the BEAT2 ground plane y = 0 (joint centres).

Joint positions come from the approximate neutral skeleton unless a skeleton is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..body.constants import FOOT_JOINTS
from ..body.kinematics import Skeleton, approximate_skeleton, forward_kinematics
from ..body.rotations import axis_angle_to_matrix

__all__ = ["boundary_ratio", "floor_penetration", "foot_contact", "foot_slide", "hinge_angles",
           "joint_limit_violations", "motion_quality", "root_excursion", "trajectory_shift", "wrist_speed"]

CONTACT_HEIGHT_M = 0.02
CONTACT_VERTICAL_STEP_M = 0.01
BACKWARD_BEND_DEG = 15.0
#: (joint, its child, hinge axis in the joint's local frame, pointing so that a positive angle is
#: the anatomical bend): knees flex the shin backwards (about +x), elbows the forearm forwards
HINGES: tuple[tuple[int, int, tuple[float, float, float]], ...] = (
    (4, 7, (1.0, 0.0, 0.0)), (5, 8, (1.0, 0.0, 0.0)),
    (18, 20, (0.0, -1.0, 0.0)), (19, 21, (0.0, 1.0, 0.0)),
)
WRISTS = (20, 21)


def foot_contact(joints: np.ndarray) -> np.ndarray:
    """(T, 4) bool: each foot joint within 2 cm of its lowest height in the clip and moving
    less than 1 cm vertically since the previous frame (frame 0 takes frame 1's step)."""
    y = joints[:, list(FOOT_JOINTS), 1]
    step = np.abs(np.diff(y, axis=0, prepend=y[:1]))
    if len(y) > 1:
        step[0] = step[1]
    return (y - y.min(0) < CONTACT_HEIGHT_M) & (step < CONTACT_VERTICAL_STEP_M)


def foot_slide(joints: np.ndarray, contact: np.ndarray, fps: float) -> np.ndarray:
    """Horizontal speeds (m/s) of the foot joints on the frames (>= 1) they are in contact."""
    xz = joints[:, list(FOOT_JOINTS)][..., [0, 2]]
    speed = np.linalg.norm(np.diff(xz, axis=0), axis=-1) * fps  # frame t-1 -> t, for t >= 1
    return speed[contact[1:]]


def root_excursion(trans: np.ndarray) -> tuple[float, float]:
    """(largest, final) horizontal distance in metres of the root from where it started."""
    if len(trans) == 0:
        return 0.0, 0.0
    d = np.linalg.norm(trans[:, [0, 2]] - trans[:1, [0, 2]], axis=1)
    return float(d.max()), float(d[-1])


def wrist_speed(motion: Any, skeleton: Skeleton | None = None) -> np.ndarray:
    """(T-1,) mean speed (m/s) of the two wrists from frame t to t+1, root fixed."""
    j = forward_kinematics(motion, skeleton=skeleton, zero_trans=True)
    return np.linalg.norm(np.diff(j[:, list(WRISTS)], axis=0), axis=-1).mean(-1) * motion.fps


def boundary_ratio(speed: np.ndarray, frames_per_token: int = 4, phase: int = 0) -> float:
    """Mean of `speed` (per frame step t -> t+1) across token boundaries over that inside tokens;
    `phase` is the index of a token's first frame modulo `frames_per_token`."""
    edge = (np.arange(len(speed)) - phase) % frames_per_token == frames_per_token - 1
    if not edge.any() or edge.all():
        return float("nan")
    return float(speed[edge].mean() / max(speed[~edge].mean(), 1e-12))


def hinge_angles(poses: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """(T, 4) signed bend angles in degrees of the knees and elbows (``HINGES`` order): the angle
    about the hinge axis from the rest bone direction to the posed one; negative = backwards."""
    skeleton = skeleton or approximate_skeleton()
    off = skeleton.offsets
    poses = np.asarray(poses, np.float64).reshape(len(poses), -1, 3)
    out = np.zeros((len(poses), len(HINGES)))
    for k, (j, child, axis) in enumerate(HINGES):
        a = np.asarray(axis)
        d0 = off[child] - a * (off[child] @ a)
        r = axis_angle_to_matrix(torch.from_numpy(poses[:, j])).numpy()
        d = r @ off[child]
        d = d - np.outer(d @ a, a)
        out[:, k] = np.degrees(np.arctan2(np.cross(d0, d) @ a, d @ d0))
    return out


def joint_limit_violations(poses: np.ndarray, skeleton: Skeleton | None = None,
                           threshold_deg: float = BACKWARD_BEND_DEG) -> float:
    """Share of frames on which a knee or elbow bends backwards by more than `threshold_deg`."""
    if len(poses) == 0:
        return 0.0
    return float((hinge_angles(poses, skeleton) < -threshold_deg).any(1).mean())


def floor_penetration(joints: np.ndarray, floor: float = 0.0) -> tuple[float, float]:
    """(share of frames with a foot joint below `floor`, deepest point below it in metres)."""
    y = joints[:, list(FOOT_JOINTS), 1]
    if len(y) == 0:
        return 0.0, 0.0
    return float((y < floor).any(1).mean()), float(max(0.0, floor - y.min()))


def motion_quality(motion: Any, skeleton: Skeleton | None = None, phase: int = 0) -> dict[str, float]:
    """Every measure of this module for one clip (a :class:`~livegesture.Motion`)."""
    j = forward_kinematics(motion, skeleton=skeleton)
    contact = foot_contact(j)
    slide = foot_slide(j, contact, motion.fps)
    far, end = root_excursion(np.asarray(motion.trans, np.float64))
    pen, depth = floor_penetration(j)
    return {
        "frames": float(len(motion)),
        "slide_median": float(np.median(slide)) if slide.size else float("nan"),
        "slide_mean": float(slide.mean()) if slide.size else float("nan"),
        "contact_any": float(contact.any(1).mean()) if len(contact) else 0.0,
        "contact_joint": float(contact.mean()) if len(contact) else 0.0,
        "root_max": far, "root_end": end,
        "boundary_ratio": boundary_ratio(wrist_speed(motion, skeleton), phase=phase),
        "limit_violations": joint_limit_violations(motion.poses, skeleton),
        "floor_share": pen, "floor_depth": depth,
    }


def trajectory_shift(reference: Any, processed: Any, skeleton: Skeleton | None = None,
                     max_frames: float = 4.0, step: float = 0.1) -> float:
    """How many frames `processed` trails `reference` (both Motions of the same clip): the shift d
    in [-max_frames, max_frames] minimising the mean |wrist(t) - reference wrist(t - d)| (root
    fixed, linear interpolation). A causal low-pass with time constant tau shows about its lag;
    a filter that adds none shows about 0."""
    a = forward_kinematics(reference, skeleton=skeleton, zero_trans=True)[:, list(WRISTS)].reshape(len(reference), -1)
    b = forward_kinematics(processed, skeleton=skeleton, zero_trans=True)[:, list(WRISTS)].reshape(len(processed), -1)
    t = np.arange(len(a), dtype=np.float64)
    edge = int(np.ceil(max_frames)) + 1
    if len(a) <= 2 * edge:
        return float("nan")
    best, best_err = 0.0, float("inf")
    for d in np.arange(-max_frames, max_frames + step / 2, step):
        shifted = np.stack([np.interp(t - d, t, a[:, k]) for k in range(a.shape[1])], axis=1)
        err = float(np.abs(b[edge:-edge] - shifted[edge:-edge]).mean())
        if err < best_err:
            best, best_err = float(d), err
    return round(best, 2)
