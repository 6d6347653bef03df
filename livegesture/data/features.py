"""Training features per region and their normalisation statistics (docs/design.md §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, TypeVar

import numpy as np
import torch

from ..body.constants import FOOT_JOINTS, MIRROR_PERMUTATION, REGION_DIMS, REGION_JOINTS, REGIONS
from ..errors import CheckpointError
from ..motion import Motion

#: lower-region dims of the x and z translation velocity (after 9 joints x 6D = 54)
TRANS_VEL_DIMS = (54, 56)
#: 6D (first two rows of R) of a rotation mirrored by x -> -x (R -> M R M, M = diag(-1, 1, 1))
_MIRROR_6D = np.array([1, -1, -1, -1, 1, 1], np.float32)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def training_features(motion: Motion) -> dict[str, np.ndarray]:
    """``motion.to_regions()`` with frame 0's x/z velocity replaced by frame 1's.

    ``to_regions`` measures frame 0's velocity from the origin (so that it is
    lossless); for statistics and training windows that value is an outlier.
    """
    feats = motion.to_regions()
    lower = feats["lower"]
    if len(lower) > 1:
        lower[0, list(TRANS_VEL_DIMS)] = lower[1, list(TRANS_VEL_DIMS)]
    elif len(lower) == 1:
        lower[0, list(TRANS_VEL_DIMS)] = 0.0
    return feats


def _mirror_maps() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per region (column permutation, sign) such that mirrored[:, i] = sign[i] * feats[:, perm[i]]."""
    out = {}
    for r in REGIONS:
        joints = list(REGION_JOINTS[r])
        perm = [6 * joints.index(MIRROR_PERMUTATION[j]) + k for j in joints for k in range(6)]
        sign = list(np.tile(_MIRROR_6D, len(joints)))
        extra = REGION_DIMS[r] - 6 * len(joints)
        if r == "lower":  # translation: x velocity flips, y and z velocity stay; foot contacts swap sides
            feet = list(FOOT_JOINTS)
            perm += [6 * len(joints) + k for k in range(3)]
            perm += [6 * len(joints) + 3 + feet.index(MIRROR_PERMUTATION[f]) for f in feet]
            sign += [-1, 1, 1] + [1] * len(feet)
        else:  # face: FLAME expressions have no mirror-symmetric basis; they are kept as they are
            perm += [6 * len(joints) + k for k in range(extra)]
            sign += [1] * extra
        out[r] = (np.array(perm), np.array(sign, np.float32))
    return out


MIRROR_MAPS = _mirror_maps()


def mirror_features(region: str, x: np.ndarray) -> np.ndarray:
    """Training features of the left/right mirror image (:meth:`Motion.mirrored`) from those of the
    motion itself: a column permutation and sign flips (foot contacts assume a symmetric skeleton)."""
    perm, sign = MIRROR_MAPS[region]
    return x[..., perm] * sign.astype(x.dtype, copy=False)


@dataclass(frozen=True, eq=False)
class FeatureMoments:
    """Frame count, mean and sum of squared deviations (float64) per region of some clips: enough to
    combine normalisation statistics over any set of clips without reading their frames again."""

    n: int
    mean: dict[str, np.ndarray]
    m2: dict[str, np.ndarray]

    @classmethod
    def zero(cls) -> "FeatureMoments":
        return cls(0, {r: np.zeros(REGION_DIMS[r]) for r in REGIONS},
                   {r: np.zeros(REGION_DIMS[r]) for r in REGIONS})

    @classmethod
    def of(cls, feats: Mapping[str, np.ndarray]) -> "FeatureMoments":
        """The moments of one clip's features (region -> (T, D_r))."""
        lens = {len(feats[r]) for r in REGIONS}
        if len(lens) != 1:
            raise ValueError(f"regions of one clip differ in length: {sorted(lens)}")
        k = lens.pop()
        if k == 0:
            return cls.zero()
        mean, m2 = {}, {}
        for r in REGIONS:
            x = np.asarray(feats[r], np.float64)
            if x.shape != (k, REGION_DIMS[r]):
                raise ValueError(f"region {r}: shape {x.shape}, expected ({k}, {REGION_DIMS[r]})")
            mean[r] = x.mean(axis=0)
            m2[r] = ((x - mean[r]) ** 2).sum(axis=0)
        return cls(k, mean, m2)

    def __add__(self, other: "FeatureMoments") -> "FeatureMoments":
        """Chan's parallel combination (exact in float64 up to rounding, order-independent in theory)."""
        n, k = self.n, other.n
        if k == 0:
            return self
        if n == 0:
            return other
        mean, m2 = {}, {}
        for r in REGIONS:
            delta = other.mean[r] - self.mean[r]
            mean[r] = self.mean[r] + delta * (k / (n + k))
            m2[r] = self.m2[r] + other.m2[r] + delta ** 2 * (n * k / (n + k))
        return FeatureMoments(n + k, mean, m2)

    def mirrored(self) -> "FeatureMoments":
        """The moments of the mirrored clip (see :func:`mirror_features`)."""
        mean = {r: mirror_features(r, self.mean[r]) for r in REGIONS}
        m2 = {r: self.m2[r][MIRROR_MAPS[r][0]] for r in REGIONS}
        return FeatureMoments(self.n, mean, m2)

    def to_array(self) -> np.ndarray:
        """float64 (1 + 2 * sum D_r,): n, then every region's mean, then every region's m2."""
        return np.concatenate([[float(self.n)], *(self.mean[r] for r in REGIONS),
                               *(self.m2[r] for r in REGIONS)])

    @classmethod
    def from_array(cls, a: np.ndarray) -> "FeatureMoments":
        a = np.asarray(a, np.float64)
        mean, m2, i = {}, {}, 1
        for target in (mean, m2):
            for r in REGIONS:
                target[r] = a[i:i + REGION_DIMS[r]].copy()
                i += REGION_DIMS[r]
        return cls(int(a[0]), mean, m2)


#: length of :meth:`FeatureMoments.to_array`
MOMENTS_WIDTH = 1 + 2 * sum(REGION_DIMS.values())


@dataclass(frozen=True, eq=False)
class RegionStats:
    """Per-region, per-dimension mean and std (float32) of training features."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        for r in REGIONS:
            for name, d in (("mean", self.mean), ("std", self.std)):
                if r not in d:
                    raise ValueError(f"RegionStats: {name} lacks region {r!r}")
                if np.shape(d[r]) != (REGION_DIMS[r],):
                    raise ValueError(f"RegionStats: {name}[{r!r}] has shape {np.shape(d[r])}, "
                                     f"expected ({REGION_DIMS[r]},)")
            if not (np.asarray(self.std[r]) > 0).all():
                raise ValueError(f"RegionStats: std[{r!r}] has non-positive entries")

    @classmethod
    def compute(cls, features: Iterable[Mapping[str, np.ndarray]],
                min_std: float = 1e-3) -> "RegionStats":
        """Mean and (population) std over all frames of all clips; std floored at `min_std`.

        Clips are combined with Chan's parallel formula in float64 (:class:`FeatureMoments`),
        so one pass over the clips is enough and large offsets do not lose precision.
        """
        return cls.from_moments((FeatureMoments.of(f) for f in features), min_std)

    @classmethod
    def from_moments(cls, moments: Iterable[FeatureMoments], min_std: float = 1e-3) -> "RegionStats":
        """The statistics of clips from their per-clip moments, combined in the order given."""
        total = FeatureMoments.zero()
        for m in moments:
            total = total + m
        if total.n == 0:
            raise ValueError("RegionStats.compute: no frames")
        return cls({r: total.mean[r].astype(np.float32) for r in REGIONS},
                   {r: np.maximum(np.sqrt(total.m2[r] / total.n), min_std).astype(np.float32)
                    for r in REGIONS})

    # ---------------------------------------------------------- (de)normalise
    def _get(self, region: str, x: ArrayT) -> tuple[ArrayT, ArrayT]:
        if region not in self.mean:
            raise ValueError(f"unknown region {region!r}; use one of {REGIONS}")
        if x.shape[-1] != REGION_DIMS[region]:
            raise ValueError(f"region {region}: last dim is {x.shape[-1]}, "
                             f"expected {REGION_DIMS[region]}")
        mean, std = self.mean[region], self.std[region]
        if isinstance(x, torch.Tensor):
            return (torch.as_tensor(mean, dtype=x.dtype, device=x.device),
                    torch.as_tensor(std, dtype=x.dtype, device=x.device))
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return mean.astype(dtype, copy=False), std.astype(dtype, copy=False)

    def normalize(self, region: str, x: ArrayT) -> ArrayT:
        """(x - mean) / std over the last dim; numpy in -> numpy out, torch in -> torch out."""
        mean, std = self._get(region, x)
        return (x - mean) / std

    def denormalize(self, region: str, x: ArrayT) -> ArrayT:
        """Inverse of :meth:`normalize`."""
        mean, std = self._get(region, x)
        return x * std + mean

    # -------------------------------------------------------------- tensors
    def to_tensors(self) -> dict[str, torch.Tensor]:
        """``stats.<region>.mean`` / ``stats.<region>.std`` float32 tensors (for safetensors)."""
        out = {}
        for r in REGIONS:
            out[f"stats.{r}.mean"] = torch.from_numpy(np.array(self.mean[r], np.float32))
            out[f"stats.{r}.std"] = torch.from_numpy(np.array(self.std[r], np.float32))
        return out

    @classmethod
    def from_tensors(cls, d: Mapping[str, torch.Tensor]) -> "RegionStats":
        """Inverse of :meth:`to_tensors`; other keys of `d` (a whole checkpoint) are ignored."""
        mean, std = {}, {}
        for r in REGIONS:
            for name, target in (("mean", mean), ("std", std)):
                key = f"stats.{r}.{name}"
                if key not in d:
                    raise CheckpointError(f"checkpoint lacks normalisation statistics {key!r}")
                v = d[key]
                v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                if v.shape != (REGION_DIMS[r],):
                    raise CheckpointError(f"checkpoint {key!r} has shape {tuple(v.shape)}, "
                                          f"expected ({REGION_DIMS[r]},)")
                target[r] = v.astype(np.float32)
        try:
            return cls(mean, std)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint statistics: {exc}") from None
