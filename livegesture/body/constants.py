"""SMPL-X skeleton constants in BEAT2 joint order (docs/design.md §2), kept in one place."""

from __future__ import annotations

NUM_JOINTS = 55
NUM_EXPRESSIONS = 100
NUM_BETAS = 300
FPS = 30

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
_HAND = tuple(f"{f}{i}" for f in _FINGERS for i in (1, 2, 3))

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw", "left_eye",
    "right_eye",
    *(f"left_{n}" for n in _HAND),
    *(f"right_{n}" for n in _HAND),
)

PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)

REGIONS: tuple[str, ...] = ("upper", "hands", "lower", "face")

REGION_JOINTS: dict[str, tuple[int, ...]] = {
    "upper": (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21),
    "hands": tuple(range(25, 55)),
    "lower": (0, 1, 2, 4, 5, 7, 8, 10, 11),
    "face": (22,),
}

#: joints whose per-frame displacement defines foot contact (ankles, feet)
FOOT_JOINTS: tuple[int, ...] = (7, 8, 10, 11)
FOOT_CONTACT_THRESHOLD_M = 0.01
#: eyes belong to no region and are emitted as identity rotations
EYE_JOINTS: tuple[int, ...] = (23, 24)

REGION_DIMS: dict[str, int] = {
    "upper": 13 * 6,
    "hands": 30 * 6,
    "lower": 9 * 6 + 3 + 4,
    "face": 6 + NUM_EXPRESSIONS,
}

#: left/right joint pairs (hips, knees, ankles, feet, collars, shoulders, elbows, wrists, eyes, hands)
MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (23, 24),
    *((j, j + 15) for j in range(25, 40)),
)
#: joint permutation that swaps left and right
MIRROR_PERMUTATION: tuple[int, ...] = tuple(
    next((b if j == a else a for a, b in MIRROR_PAIRS if j in (a, b)), j) for j in range(NUM_JOINTS))

#: joints used by the beat-consistency metric (upper body, BEAT2 convention)
BC_JOINTS: tuple[int, ...] = REGION_JOINTS["upper"]

assert len(JOINT_NAMES) == NUM_JOINTS and len(PARENTS) == NUM_JOINTS
assert all(p < j for j, p in enumerate(PARENTS))
