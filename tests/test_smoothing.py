"""The optional causal output smoother: causal, chunking-independent, removes jumps, costs lag."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch

from livegesture import LiveGestureError, Motion
from livegesture.body.kinematics import forward_kinematics
from livegesture.smoothing import CausalSmoother, SmoothingConfig

from .test_engine import assert_same_motion, audio_of, model, model_path, run_stream  # noqa: F401


def jumpy_motion(n: int = 120, seed: int = 0) -> Motion:
    """Smooth random-walk poses plus a new random offset every 4 frames (token-boundary jumps)."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 0.01, (n, 55, 3)), axis=0)
    jumps = np.repeat(rng.normal(0, 0.15, (n // 4 + 1, 55, 3)), 4, axis=0)[:n]
    trans = np.cumsum(rng.normal(0, 0.01, (n, 3)), axis=0)
    return Motion((base + jumps).astype(np.float32), trans.astype(np.float32),
                  rng.normal(0, 1, (n, 100)).astype(np.float32), np.zeros(300, np.float32))


@pytest.mark.parametrize("sizes", [[1], [4], [3, 7, 1, 0, 50], [120]])
def test_chunking_does_not_change_the_output(sizes):
    m = jumpy_motion()
    whole = CausalSmoother(SmoothingConfig(0.08), 30)(m)
    f, parts, i, k = CausalSmoother(SmoothingConfig(0.08), 30), [], 0, 0
    while i < len(m):
        n = sizes[k % len(sizes)]
        parts.append(f(m[i:i + n]))
        i, k = i + n, k + 1
    assert_same_motion(whole, Motion.concatenate(parts), tol=1e-6)


def test_causal_and_shortest_arc():
    m = jumpy_motion()
    out = CausalSmoother(SmoothingConfig(0.1), 30)(m)
    changed = jumpy_motion()
    changed.poses[60:] += 0.5  # change the future
    out2 = CausalSmoother(SmoothingConfig(0.1), 30)(changed)
    np.testing.assert_array_equal(out.poses[:60], out2.poses[:60])
    assert np.abs(out.poses[60:] - out2.poses[60:]).max() > 0.01
    # q and -q are the same rotation: a sign flip of the input must not move the output
    q = roma.rotvec_to_unitquat(torch.from_numpy(m.poses.astype(np.float64)))
    flipped = m[:]
    flipped.poses[:] = roma.unitquat_to_rotvec(-q).numpy()
    np.testing.assert_allclose(CausalSmoother(SmoothingConfig(0.1), 30)(flipped).poses, out.poses, atol=1e-5)


def test_it_removes_jumps_and_lags_by_about_tau():
    m = jumpy_motion(240)
    out = CausalSmoother(SmoothingConfig(0.08), 30)(m)
    speed = lambda x: np.linalg.norm(np.diff(forward_kinematics(x, zero_trans=True)[:, 20], axis=0), axis=-1)
    # the jumps set the high percentiles of the wrist speed: the filter must cut them
    assert np.percentile(speed(out), 95) < 0.5 * np.percentile(speed(m), 95)
    assert speed(out).max() < 0.5 * speed(m).max()
    # a step input: 63% of the step after tau
    step = Motion(np.zeros((60, 55, 3), np.float32), np.zeros((60, 3), np.float32),
                  np.zeros((60, 100), np.float32), np.zeros(300, np.float32))
    step.trans[30:, 0] = 1.0
    y = CausalSmoother(SmoothingConfig(0.1), 30)(step).trans[:, 0]
    assert y[29] == 0 and y[30] == pytest.approx(1 - np.exp(-1 / 3))
    assert y[32] == pytest.approx(1 - np.exp(-1), rel=1e-5)  # frames 30..32: 3 frames = 0.1 s


def test_engine_sessions_with_smoothing(model):  # noqa: F811
    audio = audio_of(3.0)
    raw = model.generate(audio, seed=1)
    smooth = model.generate(audio, seed=1, smoothing=SmoothingConfig(0.08))
    assert len(raw) == len(smooth) and np.abs(raw.poses - smooth.poses).max() > 1e-3
    got, _ = run_stream(model.stream(seed=1, smoothing=SmoothingConfig(0.08)), audio, [7, 3000, 1])
    assert_same_motion(smooth, got)
    off = model.generate(audio, seed=1, smoothing=SmoothingConfig(0.0))
    assert_same_motion(raw, off, tol=0)


def test_bad_time_constants_are_refused():
    for tau in (-0.1, float("nan"), 5.0):
        with pytest.raises(LiveGestureError, match="time constant"):
            SmoothingConfig(tau)
