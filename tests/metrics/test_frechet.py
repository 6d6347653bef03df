"""Fréchet distance: identical sets, closed forms, error cases."""

from __future__ import annotations

import numpy as np
import pytest

from livegesture.metrics import frechet_distance, gaussian_frechet_distance


def test_identical_sets_give_zero(rng: np.random.Generator) -> None:
    a = rng.normal(0, 1, (500, 16)) @ rng.normal(0, 1, (16, 16))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a.copy()) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_gaussians_closed_form(rng: np.random.Generator) -> None:
    mu1, mu2 = rng.normal(0, 1, 8), rng.normal(0, 1, 8)
    s1, s2 = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 8)   # standard deviations
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    got = gaussian_frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2))
    assert got == pytest.approx(expected, rel=1e-9)
    # sampled sets approach it
    a = mu1 + s1 * rng.normal(0, 1, (40000, 8))
    b = mu2 + s2 * rng.normal(0, 1, (40000, 8))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)


def test_full_covariance_closed_form(rng: np.random.Generator) -> None:
    """S2 = 4 S1 commutes with S1: d = |dmu|² + tr(S1 + 4S1 - 2·2S1) = |dmu|² + tr(S1)."""
    m = rng.normal(0, 1, (6, 6))
    s1 = m @ m.T + 0.1 * np.eye(6)
    mu1, mu2 = np.zeros(6), np.full(6, 0.5)
    got = gaussian_frechet_distance(mu1, s1, mu2, 4 * s1)
    assert got == pytest.approx(6 * 0.25 + np.trace(s1), rel=1e-9)
    # 1-D: (m1 - m2)² + (s1 - s2)²
    a = 3.0 + 2.0 * rng.normal(0, 1, (50000, 1))
    b = -1.0 + 0.5 * rng.normal(0, 1, (50000, 1))
    assert frechet_distance(a, b) == pytest.approx(16 + 1.5 ** 2, rel=0.02)


def test_singular_covariances_stay_finite(rng: np.random.Generator) -> None:
    a = rng.normal(0, 1, (5, 32))      # fewer samples than dimensions: rank-deficient covs
    b = rng.normal(1, 1, (7, 32))
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d > 0


def test_bad_inputs_are_refused(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(rng.normal(size=(1, 3)), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        frechet_distance(rng.normal(size=10), rng.normal(size=(10, 1)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 2), np.nan), rng.normal(size=(10, 2)))
