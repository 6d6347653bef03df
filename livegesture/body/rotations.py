"""Batched rotation conversions: axis-angle <-> matrix <-> 6D (torch).

Axis-angle <-> matrix goes through `roma`, which is numerically safe near 0 and
pi. The 6D layout is the first two *rows* of the matrix, the convention of
pytorch3d's ``matrix_to_rotation_6d`` that BEAT2 models use.
"""

from __future__ import annotations

import numpy as np
import roma
import torch


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors -> (..., 3, 3) matrices."""
    return roma.rotvec_to_rotmat(_as_tensor(aa))


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) matrices -> (..., 3) rotation vectors with angle in [0, pi]."""
    return roma.rotmat_to_rotvec(_as_tensor(m))


def matrix_to_6d(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two rows, flattened."""
    m = _as_tensor(m)
    return m[..., :2, :].reshape(*m.shape[:-2], 6)


def six_d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two rows (any input maps to a rotation)."""
    d6 = _as_tensor(d6)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def axis_angle_to_6d(aa: torch.Tensor) -> torch.Tensor:
    return matrix_to_6d(axis_angle_to_matrix(aa))


def six_d_to_axis_angle(d6: torch.Tensor) -> torch.Tensor:
    return matrix_to_axis_angle(six_d_to_matrix(d6))


def geodesic_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in radians between rotation matrices a and b (..., 3, 3)."""
    return roma.rotmat_geodesic_distance(_as_tensor(a), _as_tensor(b))
