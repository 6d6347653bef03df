"""SMPL-X body: constants, rotations, rest skeletons and forward kinematics."""

from .constants import (FOOT_JOINTS, JOINT_NAMES, NUM_JOINTS, PARENTS, REGION_DIMS,
                        REGION_JOINTS, REGIONS)
from .kinematics import Skeleton, approximate_skeleton, fk_matrices, forward_kinematics
from .smplx_model import SmplxBody, load_hand_mean, load_skeleton, resolve_model_path

__all__ = [
    "FOOT_JOINTS", "JOINT_NAMES", "NUM_JOINTS", "PARENTS", "REGION_DIMS", "REGION_JOINTS",
    "REGIONS", "Skeleton", "SmplxBody", "approximate_skeleton", "fk_matrices", "forward_kinematics",
    "load_hand_mean", "load_skeleton", "resolve_model_path",
]
