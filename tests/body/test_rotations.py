import math

import numpy as np
import pytest
import torch

from livegesture.body import rotations as R


def _random_aa(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    angle = torch.rand(n, 1, generator=g, dtype=torch.float64) * math.pi
    return axis * angle


@pytest.mark.parametrize("shape", [(7,), (2, 5), (3, 4, 2)])
def test_axis_angle_matrix_6d_round_trip(shape):
    aa = _random_aa(int(np.prod(shape))).reshape(*shape, 3)
    m = R.axis_angle_to_matrix(aa)
    assert m.shape == (*shape, 3, 3)
    torch.testing.assert_close(m @ m.transpose(-1, -2), torch.eye(3, dtype=m.dtype).expand_as(m))
    torch.testing.assert_close(R.six_d_to_matrix(R.matrix_to_6d(m)), m)
    torch.testing.assert_close(R.axis_angle_to_matrix(R.matrix_to_axis_angle(m)), m)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-6, math.pi - 1e-6, math.pi])
def test_safe_near_zero_and_pi(angle):
    axis = torch.tensor([[0.3, -0.5, 0.81]], dtype=torch.float64)
    aa = torch.nn.functional.normalize(axis, dim=-1) * angle
    m = R.axis_angle_to_matrix(aa)
    back = R.matrix_to_axis_angle(m)
    assert torch.isfinite(back).all()
    torch.testing.assert_close(R.axis_angle_to_matrix(back), m, atol=1e-6, rtol=0)
    assert abs(back.norm().item() - angle) < 1e-5


def test_6d_is_first_two_rows():
    m = R.axis_angle_to_matrix(_random_aa(4, seed=1))
    d6 = R.matrix_to_6d(m)
    torch.testing.assert_close(d6[:, :3], m[:, 0, :])
    torch.testing.assert_close(d6[:, 3:], m[:, 1, :])


def test_6d_projects_any_input_to_a_rotation():
    d6 = torch.randn(10, 6, dtype=torch.float64)
    m = R.six_d_to_matrix(d6)
    torch.testing.assert_close(torch.linalg.det(m), torch.ones(10, dtype=torch.float64))
