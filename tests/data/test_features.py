import numpy as np
import pytest
import torch

from livegesture import Motion
from livegesture.body.constants import REGION_DIMS, REGIONS
from livegesture.data import RegionStats, synthetic_motion, training_features
from livegesture.errors import CheckpointError


def _random_features(n: int, seed: int, offset: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {r: (rng.normal(offset, 1 + seed, (n, d))).astype(np.float32)
            for r, d in REGION_DIMS.items()}


def test_training_features_fix_frame0_velocity():
    m = synthetic_motion(40, seed=1)
    m.trans[:, 0] += 5.0          # far from the origin: to_regions' frame-0 velocity is ~5 m
    reg, feat = m.to_regions(), training_features(m)
    assert abs(reg["lower"][0, 54]) > 4
    np.testing.assert_array_equal(feat["lower"][0, [54, 56]], feat["lower"][1, [54, 56]])
    np.testing.assert_array_equal(feat["lower"][0, 55], reg["lower"][0, 55])   # y is absolute
    for r in REGIONS:
        np.testing.assert_array_equal(feat[r][1:], reg[r][1:])
        assert feat[r].dtype == np.float32
    one = training_features(m[:1])
    assert one["lower"][0, 54] == 0 and one["lower"][0, 56] == 0


def test_compute_matches_numpy_over_all_frames():
    clips = [_random_features(30, 0, 100.0), _random_features(7, 1, 100.0),
             _random_features(0, 2), _random_features(50, 3, -3.0)]
    stats = RegionStats.compute(iter(clips))      # a generator (single pass) is fine
    for r in REGIONS:
        allf = np.concatenate([c[r] for c in clips]).astype(np.float64)
        np.testing.assert_allclose(stats.mean[r], allf.mean(0), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(stats.std[r], allf.std(0), rtol=1e-5)
        assert stats.mean[r].dtype == np.float32 and stats.std[r].shape == (REGION_DIMS[r],)


def test_min_std_floor():
    f = _random_features(20, 0)
    f["lower"][:, 57:] = 1.0      # constant foot contacts
    stats = RegionStats.compute([f], min_std=0.01)
    np.testing.assert_array_equal(stats.std["lower"][57:], np.float32(0.01))
    np.testing.assert_allclose(stats.std["upper"], f["upper"].astype(np.float64).std(0), rtol=1e-5)
    with pytest.raises(ValueError, match="no frames"):
        RegionStats.compute([])


def test_tensor_round_trip_and_checkpoint_errors():
    stats = RegionStats.compute([_random_features(25, 0)])
    t = stats.to_tensors()
    assert set(t) == {f"stats.{r}.{k}" for r in REGIONS for k in ("mean", "std")}
    assert all(v.dtype == torch.float32 for v in t.values())
    back = RegionStats.from_tensors({**t, "model.weight": torch.zeros(3)})
    for r in REGIONS:
        np.testing.assert_array_equal(back.mean[r], stats.mean[r])
        np.testing.assert_array_equal(back.std[r], stats.std[r])
    missing = {k: v for k, v in t.items() if k != "stats.face.std"}
    with pytest.raises(CheckpointError, match="stats.face.std"):
        RegionStats.from_tensors(missing)
    with pytest.raises(CheckpointError, match="shape"):
        RegionStats.from_tensors({**t, "stats.upper.mean": torch.zeros(5)})


@pytest.mark.parametrize("kind", ["np32", "np64", "torch32", "torch64"])
def test_normalize_denormalize_inverse(kind):
    stats = RegionStats.compute([_random_features(40, 0, 2.0), _random_features(40, 1)])
    x = _random_features(16, 5)["hands"].reshape(2, 8, 180)
    x = {"np32": x, "np64": x.astype(np.float64), "torch32": torch.from_numpy(x),
         "torch64": torch.from_numpy(x).double()}[kind]
    y = stats.normalize("hands", x)
    assert type(y) is type(x) and y.dtype == x.dtype and y.shape == x.shape
    expected = (np.asarray(x, np.float64) - stats.mean["hands"]) / stats.std["hands"]
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)
    z = stats.denormalize("hands", y)
    np.testing.assert_allclose(np.asarray(z), np.asarray(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expected 78"):
        stats.normalize("upper", x)
    with pytest.raises(ValueError, match="unknown region"):
        stats.normalize("tail", x)


def test_normalized_training_features_are_standard():
    motions = [synthetic_motion(60, seed=s) for s in range(3)]
    feats = [training_features(m) for m in motions]
    stats = RegionStats.compute(feats)
    for r in REGIONS:
        z = np.concatenate([stats.normalize(r, f[r]) for f in feats])
        varying = stats.std[r] > 1e-3
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)
        np.testing.assert_allclose(z[:, varying].std(0), 1, atol=1e-3)
    assert isinstance(motions[0], Motion)
