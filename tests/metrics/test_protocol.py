"""The details that distinguish the beat2, evaltools and strict protocols, one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livegesture.body.constants import BC_JOINTS, NUM_JOINTS
from livegesture.body.smplx_model import SmplxBody, load_hand_mean, load_skeleton
from livegesture.metrics.beat import motion_beats, protocol_onsets, protocol_sequence_bc
from livegesture.metrics.face import protocol_face_errors
from livegesture.metrics.frechet import frechet_distance, published_frechet_distance
from livegesture.metrics.protocol import PROTOCOLS, get_protocol, scored_frames
from livegesture.metrics.scoring import protocol_joints
from livegesture.errors import ConfigError
from livegesture.motion import Motion
from tests.body.fake_smplx import write_fake_smplx

SR = 16000
BEAT2, EVALTOOLS, STRICT = (PROTOCOLS[p] for p in ("beat2", "evaltools", "strict"))


def clicks(seconds: float, times: list[float]) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    for t in times:
        i = int(t * SR)
        y[i:i + 80] = np.hanning(80)
    return y


def test_unknown_protocol() -> None:
    with pytest.raises(ConfigError, match="unknown protocol 'x'; use one of beat2, evaltools, strict"):
        get_protocol("x")


def test_beat2_cuts_whole_seconds_others_do_not() -> None:
    assert scored_frames(BEAT2, 1804, int(62.1 * SR)) == 1800
    assert scored_frames(BEAT2, 1906, int(64.1 * SR)) == 1890
    assert scored_frames(BEAT2, 1906, int(61.5 * SR)) == 1830  # the audio is the shorter
    assert scored_frames(EVALTOOLS, 1804, int(62.1 * SR)) == scored_frames(STRICT, 1804, int(62.1 * SR)) == 1804


@pytest.mark.parametrize("tail", [0.0, 3.0])
def test_onset_cuts(tail: float) -> None:
    """beat2 drops the last 2 s of the whole file (not of the motion); evaltools the last 2 s of the
    motion; both count from the 2 s cut; strict reports times on the clip's axis."""
    n = 300  # 10 s of motion
    y = clicks(10.0 + tail, [1.0, 3.0, 5.0, 7.0, 8.5, 9.5])
    b = protocol_onsets(y, n, BEAT2)
    e = protocol_onsets(y, n, EVALTOOLS)
    s = protocol_onsets(y, n, STRICT)
    # times from the cut at 2 s: the clicks at 3, 5, 7 s; 8.5 and 9.5 s only while the file goes on past them
    near = lambda t, xs: bool(np.any(np.abs(np.asarray(xs) - t) < 0.05))  # noqa: E731
    for t in (1.0, 3.0, 5.0):
        assert near(t, b) and near(t, e) and near(t + 2.0, s)
    assert not near(-1.0, b) and not near(-1.0, e)           # the click at 1 s is in the first 2 s
    assert near(6.5, b) == (tail > 0) and near(7.5, b) == (tail > 0)
    assert not near(6.5, e) and not near(7.5, e)             # evaltools stops 2 s before the motion ends
    assert not near(8.5, s) and not near(9.5, s)


def test_published_indexing_and_threshold() -> None:
    """A minimum is kept when the speed `margin` frames *before* it (its index in the cut) exceeds the
    protocol's threshold: 0.3 for beat2, 0.1 for evaltools."""
    n = 400
    t = np.arange(n) / 30.0
    x = np.zeros((n, NUM_JOINTS, 3))
    x[:, :, 0] = np.sin(2 * np.pi * 0.4 * t)[:, None]        # speed minima every 1.25 s
    mv = np.ones(NUM_JOINTS)
    speed = 0.8 * np.pi * np.abs(np.cos(2 * np.pi * 0.4 * t))
    strict = motion_beats(x, mv, threshold=0.3)[3]
    assert np.all(speed[strict] > 0.3) or len(strict) == 0
    pub = motion_beats(x, mv, threshold=0.3, published_indexing=True)[3]
    assert np.all(speed[pub - 60] > 0.3)
    assert len(pub) > len(strict)  # at the minimum itself the speed is ~0: strict keeps none
    from scipy.signal import argrelextrema

    cand = argrelextrema(speed[60:n - 60], np.less, order=7)[0]  # minima, indices relative to frame 60
    scale = np.sort(speed[cand])[len(cand) // 2] / 0.2  # half the relative-index speeds below 0.2
    for thr in (BEAT2.bc_threshold, EVALTOOLS.bc_threshold):
        kept = motion_beats(x, mv * scale, threshold=thr, published_indexing=True)[3]
        np.testing.assert_array_equal(kept, cand[speed[cand] / scale > thr] + 60)
    assert len(motion_beats(x, mv * scale, threshold=0.1, published_indexing=True)[3]) > \
        len(motion_beats(x, mv * scale, threshold=0.3, published_indexing=True)[3])


def test_sequence_bc_of_published_protocols_counts_from_the_cut() -> None:
    n = 400
    x = np.zeros((n, NUM_JOINTS, 3))
    x[:, :, 0] = np.sin(2 * np.pi * 0.4 * np.arange(n) / 30.0)[:, None]
    mv = np.full(NUM_JOINTS, 0.5)
    beats = motion_beats(x, mv, threshold=0.3, published_indexing=True)[3]
    onsets = (beats[:3] - 60) / 30.0 + 0.1          # 0.1 s after three beats, times from the cut
    r = protocol_sequence_bc(x, onsets, mv, BEAT2)
    assert r.weight == n - 120
    assert r.score == pytest.approx(np.exp(-0.1 ** 2 / (2 * 0.3 ** 2)))
    assert set(r.per_joint) == set(BC_JOINTS)
    empty = protocol_sequence_bc(x, np.zeros(0), mv, BEAT2)
    assert empty.weight == 0 and np.isnan(empty.score)


def test_face_formulas(rng: np.random.Generator) -> None:
    p, g = rng.normal(size=(50, 12)), rng.normal(size=(50, 12))
    p2, g2 = rng.normal(size=(30, 12)), rng.normal(size=(30, 12))
    pairs = [(p, g), (p2, g2)]
    mse, lvd = protocol_face_errors(pairs, "vertex", "beat2")
    assert mse.value == pytest.approx((np.mean((p - g) ** 2) * 50 + np.mean((p2 - g2) ** 2) * 30) / 80)
    # the published loop's "LVD" L1(rec[1:] - tar[:-1], tar[1:] - tar[:-1]) is |rec - tar| on frames 1..
    assert lvd.value == pytest.approx((np.mean(np.abs(p[1:] - g[1:])) * 50 + np.mean(np.abs(p2[1:] - g2[1:])) * 30)
                                      / 80)
    mse_e, lvd_e = protocol_face_errors(pairs, "vertex", "evaltools")
    assert mse_e.value == pytest.approx(mse.value)  # equal clip widths: the same weighting
    dv = lambda a, b: np.abs(np.diff(a, axis=0) - np.diff(b, axis=0)).sum()  # noqa: E731
    assert lvd_e.value == pytest.approx((dv(p, g) + dv(p2, g2)) / (50 * 12 + 30 * 12))
    _, lvd_s = protocol_face_errors(pairs, "vertex", "strict")
    assert lvd_s.value == pytest.approx((dv(p, g) / 12 + dv(p2, g2) / 12) / (49 + 29))


def test_frechet_variants(rng: np.random.Generator) -> None:
    a = rng.normal(size=(300, 8)).astype(np.float32)
    b = (rng.normal(size=(200, 8)) * 1.3 + 0.2).astype(np.float32)
    fid = published_frechet_distance(a, b)
    assert fid == pytest.approx(frechet_distance(a, b), rel=1e-5)
    from scipy import linalg

    s1, s2, off = np.cov(a, rowvar=False), np.cov(b, rowvar=False), np.eye(8) * 1e-2
    d = a.mean(0) - b.mean(0)
    expected = d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm((s1 + off) @ (s2 + off)).real)
    eps = published_frechet_distance(a, b, eps=1e-2, always_offset=True)
    assert eps == pytest.approx(expected, rel=1e-9) and eps != pytest.approx(fid, rel=1e-3)
    assert published_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def fake_smplx(tmp_path_factory: pytest.TempPathFactory):
    return write_fake_smplx(tmp_path_factory.mktemp("smplx") / "SMPLX_NEUTRAL_2020.npz")


def published_smplx(path: Path, flat_hand_mean: bool = False):
    """The model as the published evaluation code builds it (smplx.create arguments of its test loop)."""
    import smplx

    return smplx.SMPLX(str(path), ext="npz", num_betas=300, num_expression_coeffs=100, use_pca=False,
                       use_face_contour=False, flat_hand_mean=flat_hand_mean).eval()


@pytest.mark.parametrize("name", ["beat2", "evaltools"])
def test_exact_joints_follow_the_published_smplx_call(fake_smplx, rng: np.random.Generator, name: str) -> None:
    """With a SMPL-X file, joints equal the published code's smplx forward (clip betas, expression 0,
    translation 0, the mean hand pose added; evaltools also zeroes global orientation, jaw and eyes)."""
    p = PROTOCOLS[name]
    n = 20
    poses = rng.normal(0, 0.4, (n, NUM_JOINTS, 3)).astype(np.float32)
    betas = rng.normal(0, 1, 300).astype(np.float32)
    m = Motion(poses, rng.normal(0, 1, (n, 3)), np.zeros((n, 100)), betas)
    ours = protocol_joints(m, p, load_skeleton(fake_smplx.path, betas=betas), load_hand_mean(fake_smplx.path))
    model = published_smplx(fake_smplx.path)
    t = torch.from_numpy(poses.reshape(n, -1))
    z = lambda k: torch.zeros(n, k)  # noqa: E731
    root = z(3) if p.zero_root_orient else t[:, :3]
    jaw = z(3) if p.zero_root_orient else t[:, 66:69]
    eyes = (z(3), z(3)) if p.zero_root_orient else (t[:, 69:72], t[:, 72:75])
    with torch.no_grad():
        out = model(betas=torch.from_numpy(betas)[None].expand(n, -1), transl=z(3), expression=z(100),
                    global_orient=root, body_pose=t[:, 3:66], jaw_pose=jaw, leye_pose=eyes[0], reye_pose=eyes[1],
                    left_hand_pose=t[:, 75:120], right_hand_pose=t[:, 120:165], return_joints=True)
    np.testing.assert_allclose(ours, out.joints[:, :NUM_JOINTS].numpy(), atol=2e-5)
    # without the mean hand pose the fingers would be elsewhere
    plain = protocol_joints(m, p, load_skeleton(fake_smplx.path, betas=betas))
    assert np.abs(plain[:, 25:] - ours[:, 25:]).max() > 1e-3


def test_exact_face_vertices_follow_the_published_call(fake_smplx, rng: np.random.Generator) -> None:
    """Face vertices: jaw and expressions only, the clip's betas, the mean hand pose (flat_hand_mean False)."""
    n = 6
    jaw = rng.normal(0, 0.2, (n, 3)).astype(np.float32)
    expr = rng.normal(0, 1, (n, 100)).astype(np.float32)
    betas = rng.normal(0, 1, 300).astype(np.float32)
    ours = SmplxBody(fake_smplx.path, betas=betas, flat_hand_mean=False).face_vertices(jaw, expr)
    model = published_smplx(fake_smplx.path)
    z = lambda k: torch.zeros(n, k)  # noqa: E731
    with torch.no_grad():
        out = model(betas=torch.from_numpy(betas)[None].expand(n, -1), transl=z(3), expression=torch.from_numpy(expr),
                    jaw_pose=torch.from_numpy(jaw), global_orient=z(3), body_pose=z(63), left_hand_pose=z(45),
                    right_hand_pose=z(45), leye_pose=z(3), reye_pose=z(3), return_verts=True)
    np.testing.assert_allclose(ours, out.vertices.numpy(), atol=1e-5)
