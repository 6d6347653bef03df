"""Training features per region and their normalisation statistics (docs/design.md §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, TypeVar

import numpy as np
import torch

from ..body.constants import REGION_DIMS, REGIONS
from ..errors import CheckpointError
from ..motion import Motion

#: lower-region dims of the x and z translation velocity (after 9 joints x 6D = 54)
TRANS_VEL_DIMS = (54, 56)

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

        Clips are combined with Chan's parallel formula in float64, so one pass over
        the clips is enough and large offsets do not lose precision.
        """
        n = 0
        mean = {r: np.zeros(REGION_DIMS[r]) for r in REGIONS}
        m2 = {r: np.zeros(REGION_DIMS[r]) for r in REGIONS}
        for feats in features:
            lens = {len(feats[r]) for r in REGIONS}
            if len(lens) != 1:
                raise ValueError(f"regions of one clip differ in length: {sorted(lens)}")
            k = lens.pop()
            if k == 0:
                continue
            for r in REGIONS:
                x = np.asarray(feats[r], np.float64)
                if x.shape != (k, REGION_DIMS[r]):
                    raise ValueError(f"region {r}: shape {x.shape}, expected ({k}, {REGION_DIMS[r]})")
                mu = x.mean(axis=0)
                delta = mu - mean[r]
                mean[r] = mean[r] + delta * (k / (n + k))
                m2[r] = m2[r] + ((x - mu) ** 2).sum(axis=0) + delta ** 2 * (n * k / (n + k))
            n += k
        if n == 0:
            raise ValueError("RegionStats.compute: no frames")
        return cls({r: mean[r].astype(np.float32) for r in REGIONS},
                   {r: np.maximum(np.sqrt(m2[r] / n), min_std).astype(np.float32)
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
