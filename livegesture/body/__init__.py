"""SMPL-X body: constants, rotations, rest skeletons and forward kinematics."""

from .constants import (FOOT_JOINTS, JOINT_NAMES, NUM_JOINTS, PARENTS, REGION_DIMS,
                        REGION_JOINTS, REGIONS)
from .kinematics import Skeleton, approximate_skeleton, fk_matrices, forward_kinematics

__all__ = [
    "FOOT_JOINTS", "JOINT_NAMES", "NUM_JOINTS", "PARENTS", "REGION_DIMS", "REGION_JOINTS",
    "REGIONS", "Skeleton", "approximate_skeleton", "fk_matrices", "forward_kinematics",
]
