"""Forward kinematics: SMPL-X axis-angle poses -> joint positions in metres."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .constants import NUM_JOINTS, PARENTS
from .rotations import axis_angle_to_matrix
from .skeleton import APPROXIMATE_LABEL, approximate_rest_joints


@dataclass(frozen=True)
class Skeleton:
    """Rest joints (55, 3) in metres and whether they are exact or approximate."""

    rest_joints: np.ndarray
    exact: bool
    label: str

    @property
    def offsets(self) -> np.ndarray:
        from .skeleton import rest_joints_to_offsets

        return rest_joints_to_offsets(self.rest_joints)


def approximate_skeleton() -> Skeleton:
    return Skeleton(approximate_rest_joints(), exact=False, label=APPROXIMATE_LABEL)


def fk_matrices(rotmats: torch.Tensor, rest_joints: torch.Tensor, trans: torch.Tensor | None = None
                ) -> torch.Tensor:
    """Joint positions (..., 55, 3) from local rotation matrices (..., 55, 3, 3).

    The root rotates about the pelvis rest position and `trans` is added, as in SMPL-X.
    """
    offsets = rest_joints.clone()
    parents = torch.tensor(PARENTS[1:], device=rest_joints.device)
    offsets[1:] = rest_joints[1:] - rest_joints[parents]
    glob_r: list[torch.Tensor] = [rotmats[..., 0, :, :]]
    pos: list[torch.Tensor] = [offsets[0].expand(*rotmats.shape[:-3], 3)]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        pos.append(pos[p] + (glob_r[p] @ offsets[j].unsqueeze(-1)).squeeze(-1))
        glob_r.append(glob_r[p] @ rotmats[..., j, :, :])
    joints = torch.stack(pos, dim=-2)
    if trans is not None:
        joints = joints + trans.unsqueeze(-2)
    return joints


def forward_kinematics(motion: Any = None, *, poses: np.ndarray | None = None,
                       trans: np.ndarray | None = None, skeleton: Skeleton | None = None,
                       zero_trans: bool = False) -> np.ndarray:
    """Joint positions (T, 55, 3) in metres of a Motion (or of `poses` (T,55,3) / (T,165)).

    Uses `skeleton` if given, else the approximate neutral skeleton (figures computed
    with it are approximate; see :mod:`livegesture.body.skeleton`). Use
    :func:`livegesture.body.load_skeleton` to build an exact one from a SMPL-X model file.
    """
    if motion is not None:
        poses, trans = motion.poses, motion.trans
    if poses is None:
        raise ValueError("forward_kinematics needs a Motion or poses")
    poses_np = np.asarray(poses, dtype=np.float64).reshape(len(poses), NUM_JOINTS, 3)
    skeleton = skeleton or approximate_skeleton()
    rot = axis_angle_to_matrix(torch.from_numpy(poses_np))
    rest = torch.from_numpy(np.asarray(skeleton.rest_joints, dtype=np.float64))
    t = None
    if trans is not None and not zero_trans:
        t = torch.from_numpy(np.asarray(trans, dtype=np.float64))
    with torch.no_grad():
        return fk_matrices(rot, rest, t).numpy()
