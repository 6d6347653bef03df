import numpy as np
import pytest

from livegesture import Motion
from livegesture.body.constants import REGION_DIMS
from livegesture.errors import DataError


def _random_motion(t: int = 40, seed: int = 0) -> Motion:
    rng = np.random.default_rng(seed)
    trans = np.cumsum(rng.normal(0, 0.01, (t, 3)), axis=0) + [0.1, 1.0, -0.2]
    return Motion(rng.normal(0, 0.4, (t, 55, 3)).astype(np.float32), trans.astype(np.float32),
                  rng.normal(0, 1, (t, 100)).astype(np.float32), rng.normal(0, 1, 300).astype(np.float32))


def test_save_load_identical(tmp_path):
    m = _random_motion()
    m2 = Motion.load(m.save(tmp_path / "a.npz"))
    for k in ("poses", "trans", "expressions", "betas"):
        np.testing.assert_array_equal(getattr(m2, k), getattr(m, k))
        assert getattr(m2, k).dtype == getattr(m, k).dtype
    with np.load(tmp_path / "a.npz") as d:
        assert d["poses"].shape == (40, 165) and int(d["mocap_frame_rate"]) == 30
        assert str(d["model"]) == "smplx2020" and str(d["gender"]) == "neutral"


def test_regions_shapes_and_round_trip():
    m = _random_motion()
    f = m.to_regions()
    assert {k: v.shape[1] for k, v in f.items()} == REGION_DIMS
    m2 = Motion.from_regions(f, betas=m.betas)
    np.testing.assert_allclose(m2.trans, m.trans, atol=1e-5)
    np.testing.assert_allclose(m2.expressions, m.expressions, atol=1e-5)
    f2 = m2.to_regions()
    for k in f:
        np.testing.assert_allclose(f2[k], f[k], atol=1e-5)


def test_slicing_and_concatenation():
    m = _random_motion(30)
    parts = [m[:7], m[7:8], m[8:]]
    assert [len(p) for p in parts] == [7, 1, 22]
    joined = Motion.concatenate(parts)
    np.testing.assert_array_equal(joined.poses, m.poses)
    np.testing.assert_array_equal(joined.trans, m.trans)
    assert len(m[0:0]) == 0


def test_bad_files_name_the_problem(tmp_path):
    np.savez(tmp_path / "wrong.npz", foo=np.zeros(3))
    with pytest.raises(DataError, match=r"wrong\.npz.*missing key"):
        Motion.load(tmp_path / "wrong.npz")
    good = _random_motion().save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"trunc\.npz"):
        Motion.load(tmp_path / "trunc.npz")
    with pytest.raises(DataError, match="no such motion file"):
        Motion.load(tmp_path / "absent.npz")
    np.savez(tmp_path / "shape.npz", poses=np.zeros((5, 10)), trans=np.zeros((5, 3)),
             betas=np.zeros(300), expressions=np.zeros((5, 100)))
    with pytest.raises(DataError, match=r"shape\.npz.*poses"):
        Motion.load(tmp_path / "shape.npz")


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["2_scott_0_1_1", "2_scott_0_2_2"])
def test_real_file_round_trips(beat2_dir, tmp_path, name):
    m = Motion.load(beat2_dir / f"{name}.npz")
    m2 = Motion.load(m.save(tmp_path / "x.npz"))
    for k in ("poses", "trans", "expressions", "betas"):
        np.testing.assert_array_equal(getattr(m2, k), getattr(m, k))
    f = m.to_regions()
    f2 = Motion.from_regions(f, betas=m.betas).to_regions()
    for k in f:
        np.testing.assert_allclose(f2[k], f[k], atol=1e-5)
    # a person stands on the floor most of the time: feet in contact in most frames
    assert f["lower"][:, -4:].mean() > 0.5


def test_mirror_reflects_joint_positions():
    from livegesture.body import forward_kinematics
    from livegesture.body.constants import MIRROR_PERMUTATION

    m = _random_motion(12)
    j, jm = forward_kinematics(m), forward_kinematics(m.mirrored())
    # the approximate skeleton is left/right symmetric, so mirroring the motion mirrors the joints
    expected = j[:, list(MIRROR_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(jm, expected, atol=1e-5)
    twice = m.mirrored().mirrored()
    np.testing.assert_allclose(twice.poses, m.poses, atol=1e-7)
    assert sorted(MIRROR_PERMUTATION) == list(range(55))
