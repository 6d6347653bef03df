"""Fréchet distance between two feature sets (FGD of docs/design.md §8, before the tables' ×10)."""

from __future__ import annotations

import numpy as np
from scipy import linalg


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"frechet_distance: {name} must be (N, D), got shape {x.shape}")
    if len(x) < 2:
        raise ValueError(f"frechet_distance: {name} needs at least 2 feature vectors, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError(f"frechet_distance: {name} contains NaN or Inf")
    return x


def gaussian_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                              sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """||mu1 - mu2||² + tr(S1 + S2 - 2 (S1 S2)^½) of two Gaussians.

    As in the usual FID/FGD code: when the matrix square root is not finite, `eps` is
    added to both diagonals and it is recomputed; a negligible imaginary part
    (numerical noise) is dropped. Tiny negative results from rounding are clipped to 0.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"frechet distance: shapes do not match: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet distance: imaginary component "
                             f"{np.max(np.abs(covmean.imag)):.3g} in sqrtm(S1 S2)")
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance of feature sets a (N, D) and b (M, D) (Gaussian fits, unbiased cov)."""
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0),
                                     np.cov(b, rowvar=False), eps=eps)


def published_frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6,
                               always_offset: bool = False) -> float:
    """The Fréchet distance exactly as the published BEAT2 code computes it from feature sets
    (N, D) and (M, D) (keep them float32 as its extractor gives them: its means are float32).

    ``always_offset=False`` (EMAGE 2024 test loop, after pytorch-fid): ``sqrtm(S1 S2)``, with
    `eps` added to both diagonals only when that root is not finite; a non-negligible
    imaginary part raises ValueError (that code then prints 1e10). ``always_offset=True``
    (emage_evaltools): `eps` always added, the real part kept. No clipping at 0.
    """
    mu1, mu2 = np.mean(a, axis=0), np.mean(b, axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    offset = np.eye(s1.shape[0]) * eps
    if always_offset:
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
        if np.iscomplexobj(covmean):
            covmean = covmean.real
    else:
        covmean = linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise ValueError(f"frechet distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} "
                                 "in sqrtm(S1 S2)")
            covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
