"""A built-in *approximate* neutral SMPL-X rest skeleton.

Authored by hand from adult anthropometric proportions (about 1.75 m tall), in
the SMPL-X rest frame: metres, +Y up, +Z forward, +X to the subject's left,
T-pose. It is **not** the licensed SMPL-X model: joint positions computed with
it are approximate, and every figure derived from it must say so
(:data:`APPROXIMATE_LABEL`). Point :func:`livegesture.body.forward_kinematics`
at a licensed SMPL-X model file for exact joints.
"""

from __future__ import annotations

import numpy as np

from .constants import NUM_JOINTS, PARENTS

APPROXIMATE_LABEL = "approximate neutral skeleton (no SMPL-X model file)"

#: rest position of the pelvis; SMPL-X places the root joint here and adds `trans`
PELVIS_REST = (0.0, -0.35, 0.01)

# (child - parent) offsets of the left side; the right side mirrors x.
_OFFSETS_LEFT_AND_CENTRE: dict[int, tuple[float, float, float]] = {
    1: (0.060, -0.090, -0.010),   # left_hip
    3: (0.000, 0.110, -0.030),    # spine1
    4: (0.040, -0.380, 0.000),    # left_knee
    6: (0.000, 0.130, 0.010),     # spine2
    7: (-0.010, -0.400, -0.040),  # left_ankle
    9: (0.000, 0.050, 0.020),     # spine3
    10: (0.020, -0.060, 0.120),   # left_foot
    12: (0.000, 0.210, -0.030),   # neck
    13: (0.070, 0.120, -0.010),   # left_collar
    15: (0.000, 0.090, 0.050),    # head
    16: (0.110, 0.030, -0.010),   # left_shoulder
    18: (0.260, -0.010, -0.020),  # left_elbow
    20: (0.250, 0.010, 0.000),    # left_wrist
    22: (0.000, -0.020, 0.020),   # jaw
    23: (0.030, 0.040, 0.080),    # left_eye
    # left hand: index, middle, pinky, ring, thumb (1, 2, 3)
    25: (0.090, -0.005, 0.025), 26: (0.035, -0.002, 0.000), 27: (0.025, -0.002, 0.000),
    28: (0.095, 0.000, 0.005), 29: (0.037, -0.002, 0.000), 30: (0.027, -0.002, 0.000),
    31: (0.080, -0.010, -0.035), 32: (0.022, -0.002, -0.002), 33: (0.018, -0.002, -0.002),
    34: (0.088, -0.005, -0.015), 35: (0.032, -0.002, -0.001), 36: (0.023, -0.002, -0.001),
    37: (0.025, -0.015, 0.025), 38: (0.025, -0.005, 0.020), 39: (0.025, -0.005, 0.015),
}
_MIRROR = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 24: 23,
           **{j + 15: j for j in range(25, 40)}}


def approximate_offsets() -> np.ndarray:
    """(55, 3) float64 child-minus-parent rest offsets; row 0 is the pelvis rest position."""
    off = np.zeros((NUM_JOINTS, 3))
    off[0] = PELVIS_REST
    for j, o in _OFFSETS_LEFT_AND_CENTRE.items():
        off[j] = o
    for right, left in _MIRROR.items():
        off[right] = off[left] * np.array([-1.0, 1.0, 1.0])
    return off


def offsets_to_rest_joints(offsets: np.ndarray) -> np.ndarray:
    """Accumulate parent-relative offsets into absolute rest joint positions."""
    rest = np.array(offsets, dtype=np.float64, copy=True)
    for j in range(1, NUM_JOINTS):
        rest[j] = rest[PARENTS[j]] + offsets[j]
    return rest


def rest_joints_to_offsets(rest: np.ndarray) -> np.ndarray:
    off = np.array(rest, dtype=np.float64, copy=True)
    for j in range(1, NUM_JOINTS):
        off[j] = rest[j] - rest[PARENTS[j]]
    return off


def approximate_rest_joints() -> np.ndarray:
    """(55, 3) absolute rest joint positions of the approximate neutral skeleton."""
    return offsets_to_rest_joints(approximate_offsets())
