"""FGD feature extractor: shapes, save/load, external checkpoints, training reduces the loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from livegesture.data import synthetic_motion
from livegesture.errors import CheckpointError, DataError
from livegesture.metrics import frechet_distance
from livegesture.metrics.extractor import (FgdConfig, FgdExtractor, fgd, joint_neighbourhoods,
                                           load_external, motion_features, motion_to_6d)
from livegesture.metrics.training import train_fgd_extractor

TINY = FgdConfig(joint_channels=4, hidden=32, latent=16)
SMALL = FgdConfig(joint_channels=8, hidden=64, latent=32)


@pytest.fixture
def one_thread():
    """Small convs on a busy 2-core machine run far faster single-threaded."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def poses6d(rng: np.random.Generator, b: int = 2, t: int = 32) -> torch.Tensor:
    aa = rng.normal(0, 0.3, (b * t, 55, 3))
    return torch.from_numpy(motion_to_6d(aa).reshape(b, t, 330))


def test_neighbourhoods_follow_the_tree() -> None:
    nb = joint_neighbourhoods(2)
    assert nb[20][0] == 20 and {18, 16, 25, 26, 40 - 2}.issubset(set(nb[20]) | {38})
    assert 21 not in nb[20] and 0 not in nb[20]          # other wrist / pelvis too far
    assert set(joint_neighbourhoods(1)[0]) == {0, 1, 2, 3}


def test_features_shape_and_joint_locality(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    m = FgdExtractor(TINY).eval()
    x = poses6d(rng, 3, 34)                                  # cropped to 32 frames
    f = m.features(x)
    assert f.shape == (3 * 8, 16) and f.dtype == np.float64
    with torch.no_grad():
        assert m(x).shape == (3, 32, 330)
        # the first skeleton conv of the right wrist does not see the left hand
        conv = m.encoder[0]
        y = conv(x[:, :32].transpose(1, 2))
        x2 = x.clone()
        x2[..., 25 * 6:40 * 6] += 1.0                         # move the left hand only
        y2 = conv(x2[:, :32].transpose(1, 2))
        c = TINY.joint_channels
        assert torch.allclose(y[:, 21 * c:22 * c], y2[:, 21 * c:22 * c])
        assert not torch.allclose(y[:, 20 * c:21 * c], y2[:, 20 * c:21 * c])
    with pytest.raises(ValueError, match="330"):
        m.features(torch.zeros(1, 8, 100))


def test_save_load_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    torch.manual_seed(1)
    m = FgdExtractor(TINY)
    m.set_normalisation(rng.normal(0, 0.1, 330), rng.uniform(0.5, 1.5, 330))
    x = poses6d(rng)
    path = m.save(tmp_path / "fgd.safetensors", extra={"note": "test"})
    assert not list(tmp_path.glob("*.tmp"))
    m2 = FgdExtractor.load(path)
    assert m2.config == TINY
    np.testing.assert_array_equal(m.features(x), m2.features(x))
    torch.testing.assert_close(m2.std, m.std)


def test_load_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such FGD extractor"):
        FgdExtractor.load(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors: not a readable safetensors"):
        FgdExtractor.load(bad)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="other.safetensors: not a LiveGesture model file"):
        FgdExtractor.load(tmp_path / "other.safetensors")


def test_load_external_matching_checkpoints(tmp_path: Path, rng: np.random.Generator) -> None:
    torch.manual_seed(2)
    m = FgdExtractor(TINY)
    x = poses6d(rng)
    # a .pt state dict wrapped as {"model_state": ...} with DDP "module." prefixes
    sd = {f"module.{k}": v for k, v in m.state_dict().items()}
    torch.save({"model_state": sd, "epoch": 3}, tmp_path / "ext.pt")
    ext = load_external(tmp_path / "ext.pt", TINY)
    np.testing.assert_allclose(ext.features(x), m.features(x), rtol=0, atol=0)
    # a .bin without normalisation needs mean/std
    weights = {k: v for k, v in m.state_dict().items() if k not in ("mean", "std")}
    torch.save(weights, tmp_path / "ext.bin")
    with pytest.raises(CheckpointError, match="no input normalisation"):
        load_external(tmp_path / "ext.bin", TINY)
    ext2 = load_external(tmp_path / "ext.bin", TINY, mean=np.zeros(330), std=np.ones(330))
    np.testing.assert_allclose(ext2.features(x), m.features(x))
    # .safetensors
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in m.state_dict().items()},
              str(tmp_path / "ext.safetensors"))
    np.testing.assert_allclose(load_external(tmp_path / "ext.safetensors", TINY).features(x),
                               m.features(x))


def test_load_external_mismatch_names_keys(tmp_path: Path) -> None:
    other = FgdExtractor(FgdConfig(joint_channels=4, hidden=48, latent=16))
    torch.save(other.state_dict(), tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatch: encoder\.6\.weight"):
        load_external(tmp_path / "wrong.pt", TINY)
    torch.save({"encoder.0.conv.weight": torch.zeros(3), "foo": torch.zeros(1)},
               tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="missing: .*unexpected: foo"):
        load_external(tmp_path / "partial.pt", TINY)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_external(tmp_path / "junk.pt", TINY)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_external(tmp_path / "missing.pt", TINY)


def test_fgd_of_clips(rng: np.random.Generator, one_thread) -> None:
    torch.manual_seed(3)
    m = FgdExtractor(TINY).eval()
    real = [synthetic_motion(120, seed=s) for s in range(3)]
    six = np.concatenate([motion_to_6d(r.poses) for r in real])
    m.set_normalisation(six.mean(0), six.std(0))
    same = fgd(m, real, real)
    assert same == pytest.approx(0.0, abs=1e-4)
    noisy = [synthetic_motion(120, seed=s) for s in range(3)]
    for n in noisy:
        n.poses += rng.normal(0, 0.5, n.poses.shape).astype(np.float32)
    far = fgd(m, noisy, real)
    assert far > 1e-4 and far > 100 * same
    assert motion_features(m, real).shape == (3 * 30, 16)
    assert frechet_distance(motion_features(m, real), motion_features(m, noisy)) == \
        pytest.approx(fgd(m, real, noisy))


def test_training_reduces_the_reconstruction_loss(tmp_path: Path, one_thread) -> None:
    data = tmp_path / "data"
    for i in range(2):
        synthetic_motion(300, seed=i).save(data / f"2_scott_0_{i + 1}_{i + 1}.npz")
    out = tmp_path / "fgd.safetensors"
    res = train_fgd_extractor(data, out, steps=250, batch_size=8, window=32, lr=2e-3, seed=0,
                              device="cpu", progress=False, config=SMALL)
    rec = [h["rec"] for h in res.history]
    first, last = np.mean(rec[:10]), np.mean(rec[-10:])
    print(f"fgd extractor: rec L1 {first:.4f} -> {last:.4f}, loss {res.first_loss:.4f} -> "
          f"{res.final_loss:.4f} in {res.steps} steps, {res.seconds:.1f} s")
    assert last < 0.6 * first
    assert res.clips == 2 and res.frames == 600
    m = FgdExtractor.load(out)
    assert m.config == SMALL and float(m.std.min()) >= 0.0099
    assert (tmp_path / "fgd.runs").is_dir()              # TensorBoard scalars
    with pytest.raises(DataError, match="no clip has 400 frames"):
        train_fgd_extractor(data, tmp_path / "x.safetensors", steps=1, window=400,
                            progress=False, config=TINY, tensorboard=False)
