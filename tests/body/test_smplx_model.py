"""The model-file path: exact rest joints and vertices from an SMPL-X npz (a fake one here)."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.body import SmplxBody, forward_kinematics, load_skeleton
from livegesture.errors import CheckpointError, LiveGestureError
from livegesture.motion import Motion

from .fake_smplx import FACE_VERTS, N_SHAPE, FakeSmplx, write_fake_smplx


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeSmplx:
    return write_fake_smplx(tmp_path_factory.mktemp("smplx") / "SMPLX_NEUTRAL.npz")


@pytest.fixture(scope="module")
def body(fake: FakeSmplx) -> SmplxBody:
    return SmplxBody(fake.path)


def test_load_skeleton_returns_the_planted_rest_joints(fake: FakeSmplx) -> None:
    for where in (fake.path, fake.path.parent):  # the file or its folder
        sk = load_skeleton(where)
        assert sk.exact and "SMPLX_NEUTRAL.npz" in sk.label
        assert sk.rest_joints.shape == (55, 3)
        np.testing.assert_allclose(sk.rest_joints, fake.rest_joints, atol=1e-12)


def test_load_skeleton_applies_betas(fake: FakeSmplx, rng: np.random.Generator) -> None:
    betas = rng.normal(0, 1, 300)
    sk = load_skeleton(fake.path, betas=betas)
    shaped = fake.v_template.astype(np.float64) + np.einsum(
        "vck,k->vc", fake.shapedirs[..., :N_SHAPE].astype(np.float64), betas)
    np.testing.assert_allclose(sk.rest_joints, fake.j_regressor.astype(np.float64) @ shaped,
                               atol=1e-10)
    assert np.abs(sk.rest_joints - fake.rest_joints).max() > 1e-3  # betas did something
    # fewer betas than components: the rest count as zero
    short = load_skeleton(fake.path, betas=betas[:10])
    np.testing.assert_allclose(short.rest_joints, sk.rest_joints, atol=1e-10)  # only 10 random


@pytest.mark.parametrize("with_betas", [False, True])
def test_fk_with_exact_skeleton_matches_smplx(fake: FakeSmplx, body: SmplxBody,
                                              rng: np.random.Generator, with_betas: bool) -> None:
    betas = rng.normal(0, 1, 300) if with_betas else None
    b = SmplxBody(fake.path, betas=betas) if with_betas else body
    poses = rng.normal(0, 0.5, (8, 55, 3))
    trans = rng.normal(0, 1, (8, 3))
    _, smplx_joints = b.forward(poses, trans)
    ours = forward_kinematics(poses=poses, trans=trans,
                              skeleton=load_skeleton(fake.path, betas=betas))
    assert smplx_joints.shape == ours.shape == (8, 55, 3)
    assert np.abs(ours - smplx_joints).max() < 1e-4
    # ...and the approximate skeleton is visibly different (so the test can fail)
    assert np.abs(forward_kinematics(poses=poses, trans=trans) - smplx_joints).max() > 1e-3


def test_motion_joints_accept_the_exact_skeleton(fake: FakeSmplx, body: SmplxBody,
                                                 rng: np.random.Generator) -> None:
    m = Motion(rng.normal(0, 0.3, (4, 55, 3)).astype(np.float32),
               rng.normal(0, 1, (4, 3)).astype(np.float32), np.zeros((4, 100), np.float32))
    _, j = body.forward(m.poses, m.trans)
    assert np.abs(m.joints(load_skeleton(fake.path)) - j).max() < 1e-4


def test_face_vertices_use_only_jaw_and_expressions(body: SmplxBody,
                                                    rng: np.random.Generator) -> None:
    jaw = rng.normal(0, 0.2, (5, 3))
    expr = rng.normal(0, 1, (5, 100))
    v = body.face_vertices(jaw, expr)
    assert v.shape == (5, body.num_vertices, 3)
    rest = body.face_vertices(np.zeros((1, 3)), np.zeros((1, 100)))[0]
    moved = np.abs(v - rest).max(axis=(0, 2))
    non_face = np.setdiff1d(np.arange(body.num_vertices), FACE_VERTS)
    # jaw-skinned face vertices and the jaw joint's own vertices move; body vertices do not
    assert moved[FACE_VERTS].min() > 1e-4
    assert np.median(moved[non_face]) < 1e-6
    # the expressions change the face: same jaw, other expressions -> other vertices
    v2 = body.face_vertices(jaw, np.zeros((5, 100)))
    assert np.abs(v2 - v)[:, FACE_VERTS].max() > 1e-3


def test_missing_model_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such SMPL-X model file"):
        load_skeleton(tmp_path / "SMPLX_NEUTRAL.npz")
    with pytest.raises(CheckpointError, match="no SMPL-X model file in this folder"):
        load_skeleton(tmp_path)
    with pytest.raises(LiveGestureError, match="no SMPL-X model file"):
        SmplxBody(tmp_path)


def test_model_file_without_keys_names_them(tmp_path) -> None:
    bad = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(bad, v_template=np.zeros((10, 3)))
    with pytest.raises(CheckpointError, match="missing key.*shapedirs.*J_regressor"):
        load_skeleton(bad)
    np.savez(bad, v_template=np.zeros((10, 3)), shapedirs=np.zeros((10, 3, 20)),
             J_regressor=np.zeros((55, 11)))
    with pytest.raises(CheckpointError, match="J_regressor has shape"):
        load_skeleton(bad)
    bad.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="unreadable npz"):
        load_skeleton(bad)
