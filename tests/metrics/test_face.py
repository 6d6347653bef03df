"""Face MSE and LVD: labels, hand-computed values, the vertex path with a fake SMPL-X model."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.body import SmplxBody
from livegesture.metrics import FaceError, face_mse, lvd
from livegesture.motion import Motion
from tests.body.fake_smplx import write_fake_smplx


def motion(expr: np.ndarray, jaw: np.ndarray | None = None,
           rng: np.random.Generator | None = None) -> Motion:
    t = len(expr)
    poses = np.zeros((t, 55, 3), np.float32)
    if rng is not None:                      # body motion that the face metrics must ignore
        poses += rng.normal(0, 0.3, poses.shape).astype(np.float32)
    if jaw is not None:
        poses[:, 22] = jaw
    return Motion(poses, np.zeros((t, 3), np.float32), expr.astype(np.float32))


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> SmplxBody:
    return SmplxBody(write_fake_smplx(tmp_path_factory.mktemp("smplx") / "SMPLX_NEUTRAL.npz").path)


def test_expression_fallback_values_and_labels(rng: np.random.Generator) -> None:
    gt = motion(np.zeros((10, 100)))
    pred = motion(np.full((10, 100), 0.5))
    r = face_mse(pred, gt)
    assert isinstance(r, FaceError) and r.kind == "expression" and r.metric == "mse"
    assert r.value == pytest.approx(0.25) and float(r) == r.value and r.frames == 10
    assert "expression-coefficient MSE" in r.label and "no SMPL-X model" in r.label
    # frame-weighted over clips: 10 frames at 0.25 and 30 frames at 0 -> 0.0625
    r2 = face_mse([pred, motion(np.zeros((30, 100)))],
                  [gt, motion(np.zeros((30, 100)))])
    assert r2.value == pytest.approx(0.0625)
    # lengths differ: cropped to the shorter
    assert face_mse(motion(np.full((12, 100), 0.5)), gt).frames == 10


def test_lvd_expression_hand_computed() -> None:
    t = np.arange(6, dtype=np.float64)[:, None]
    gt = motion(np.zeros((6, 100)))
    pred = motion(np.repeat(0.1 * t, 100, axis=1))       # Δ = 0.1 on every coefficient
    r = lvd(pred, gt)
    assert r.kind == "expression" and r.metric == "lvd" and "LVD" in r.label
    assert r.value == pytest.approx(0.1) and r.frames == 5
    # a constant offset has no velocity difference
    assert lvd(motion(np.full((6, 100), 3.0)), gt).value == pytest.approx(0.0)


def test_vertex_mse_uses_only_jaw_and_expressions(body: SmplxBody,
                                                  rng: np.random.Generator) -> None:
    t = 4
    e_gt, e_pr = rng.normal(0, 1, (t, 100)), rng.normal(0, 1, (t, 100))
    j_gt, j_pr = rng.normal(0, 0.1, (t, 3)), rng.normal(0, 0.1, (t, 3))
    gt, pred = motion(e_gt, j_gt), motion(e_pr, j_pr, rng)     # pred also moves its body
    r = face_mse(pred, gt, body=body)
    assert r.kind == "vertex" and "vertex MSE" in r.label
    expected = np.mean((body.face_vertices(j_pr, e_pr) - body.face_vertices(j_gt, e_gt)) ** 2)
    assert r.value == pytest.approx(expected, rel=1e-6) and r.value > 0
    # body pose does not matter, only jaw + expressions
    assert face_mse(motion(e_gt, j_gt, rng), gt, body=body).value == pytest.approx(0.0, abs=1e-12)
    v = lvd(pred, gt, body=body)
    vp, vg = body.face_vertices(j_pr, e_pr), body.face_vertices(j_gt, e_gt)
    assert v.kind == "vertex"
    assert v.value == pytest.approx(np.mean(np.abs(np.diff(vp, axis=0) - np.diff(vg, axis=0))),
                                    rel=1e-6)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="2 predicted clips but 1"):
        face_mse([motion(np.zeros((3, 100)))] * 2, [motion(np.zeros((3, 100)))])
    with pytest.raises(ValueError, match="at least 2 frames"):
        lvd(motion(np.zeros((1, 100))), motion(np.zeros((1, 100))))
