"""CausalLogMel: causal framing, offline == streamed for any packet schedule, reference values."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from livegesture.audio import CausalLogMel
from livegesture.streaming import state_clone, state_copy_, state_nbytes, state_reset_

SR = 16000


def _speechlike(rng: np.random.Generator, n: int, batch: int = 1) -> np.ndarray:
    """Noise through a few resonances with a slow envelope: broadband, non-stationary."""
    t = np.arange(n) / SR
    out = []
    for _ in range(batch):
        x = rng.standard_normal(n) * 0.05
        for f in rng.uniform(100, 4000, size=4):
            x += rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28))
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 5) * t) ** 2
        out.append(x)
    return np.stack(out)


@torch.no_grad()
def _stream(mod, x: torch.Tensor, sizes) -> torch.Tensor:
    state = mod.init_state(x.shape[0], dtype=x.dtype)
    outs, pos = [], 0
    for n in sizes:
        outs.append(mod.step(x[:, pos:pos + n], state))
        pos += n
    assert pos == x.shape[1]
    return torch.cat(outs, dim=1)


def _schedule(total: int, size: int) -> list[int]:
    return [size] * (total // size) + ([total % size] if total % size else [])


def _ragged(rng: np.random.Generator, total: int) -> list[int]:
    sizes, pos = [], 0
    while pos < total:
        n = int(rng.choice([0, 0, 1, 2, 159, 160, 161, 399, 400, 401, int(rng.integers(0, 2000))]))
        n = min(n, total - pos)
        sizes.append(n)
        pos += n
    return sizes


def _reference(x: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Independent numpy/librosa reference: zero-left-pad 240 samples, STFT with center=False.

    The module keeps its window and filterbank as float32 buffers (cast to the compute dtype),
    so the reference rounds them through float32 too; everything else is float64."""
    padded = np.concatenate([np.zeros(240), x])
    window = scipy.signal.get_window("hann", 400, fftbins=True).astype(np.float32).astype(np.float64)
    spec = librosa.stft(padded, n_fft=400, hop_length=160, win_length=400, window=window, center=False)
    power = np.abs(spec) ** 2  # (201, M)
    fb = librosa.filters.mel(sr=SR, n_fft=400, n_mels=n_mels, fmin=0.0, fmax=8000.0, dtype=np.float64)
    fb = fb.astype(np.float32).astype(np.float64)
    return np.log(np.maximum(fb @ power, 1e-5)).T  # (M, n_mels)


@pytest.fixture(scope="module")
def mel64() -> CausalLogMel:
    return CausalLogMel().double()


@pytest.mark.parametrize("n", [0, 1, 159, 160, 161, 399, 400, 401, 16000, 16001])
def test_frame_count_rule(mel64, n):
    x = torch.zeros(2, n, dtype=torch.float64)
    assert mel64(x).shape == (2, n // 160, 80)
    assert CausalLogMel.frames_available(n) == n // 160


def test_matches_independent_reference(mel64, rng):
    x = _speechlike(rng, 16000 + 77)[0]
    ours = mel64(torch.from_numpy(x)[None])[0].numpy()
    ref = _reference(x)
    assert ours.shape == ref.shape == (100, 80)
    np.testing.assert_allclose(ours, ref, atol=1e-8, rtol=0)
    # float32 module on float32 input stays close to the float64 reference
    ours32 = CausalLogMel()(torch.from_numpy(x).float()[None])[0].double().numpy()
    assert np.abs(ours32 - ref)[ref > -9].max() < 1e-3


def test_causal_framing_and_fresh_start(mel64, rng):
    x = torch.from_numpy(_speechlike(rng, 4000))
    full = mel64(x)
    # frame m depends only on samples < (m+1)*160: perturbing samples >= S changes no frame ending <= S
    for s in [1, 159, 160, 161, 1000, 2399, 2400]:
        y = x.clone()
        y[:, s:] += torch.from_numpy(rng.standard_normal(4000 - s))
        other = mel64(y)
        k = s // 160
        assert torch.equal(full[:, :k], other[:, :k])
        assert not torch.allclose(full[:, k:], other[:, k:])
    # before the stream start there are zeros: frame 0 only sees samples [0, 160)
    y = torch.zeros(1, 160, dtype=torch.float64)
    assert torch.allclose(mel64(y), torch.full((1, 1, 80), np.log(1e-5), dtype=torch.float64))


def test_offline_equals_streamed(mel64, rng):
    total = 16000 + 123
    x = torch.from_numpy(_speechlike(rng, total, batch=2))
    full = mel64(x)
    schedules = {
        "17ms": _schedule(total, 272),
        "200ms": _schedule(total, 3200),
        "ragged": _ragged(rng, total),
        "whole": [total],
        "zeros-around": [0, total, 0],
    }
    for name, sizes in schedules.items():
        got = _stream(mel64, x, sizes)
        assert got.shape == full.shape, name
        assert (got - full).abs().max().item() <= 1e-9, name


def test_single_samples(mel64, rng):
    total = 4800  # 0.3 s one sample at a time
    x = torch.from_numpy(_speechlike(rng, total))
    full = mel64(x)
    got = _stream(mel64, x, [1] * total)
    assert got.shape == full.shape
    assert (got - full).abs().max().item() <= 1e-9


def test_state_reset_save_restore_and_constant_size(mel64, rng):
    x = torch.from_numpy(_speechlike(rng, 8000, batch=2))
    state = mel64.init_state(2, dtype=torch.float64)
    nbytes = state_nbytes(state)
    first = mel64.step(x[:, :3000], state)
    saved = state_clone(state)
    a = mel64.step(x[:, 3000:], state)
    state_copy_(state, saved)
    b = mel64.step(x[:, 3000:], state)
    assert torch.equal(a, b)
    assert torch.equal(torch.cat([first, a], 1), mel64(x))
    assert state_nbytes(state) == nbytes
    # reset: back to a fresh stream
    state_reset_(state)
    assert torch.equal(mel64.step(x, state), mel64(x))
    # out-of-phase sessions in one batch are refused
    state_reset_(state)
    mel64.step(x[:, :100], state)
    state_reset_(state, torch.tensor([True, False]))
    with pytest.raises(ValueError, match="in phase"):
        mel64.step(x[:, :5], state)
