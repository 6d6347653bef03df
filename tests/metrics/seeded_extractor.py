"""A checkpoint of the published FGD extractor's layout with seeded weights, for tests.

The reference figures in ``data/published_reference.json`` were computed by the published code
with a checkpoint built by the same rule (its README says how); :func:`write_seeded_checkpoint`
rebuilds it from this project's own layout, so the tensor hash also checks that the connectivity
masks and pooling matrices computed here are the published ones.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from livegesture.metrics.published_extractor import published_state


def is_structural(key: str) -> bool:
    return key.endswith(".mask") or key.endswith("common.0.weight")


def seeded_array(key: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rs = np.random.RandomState((seed * 1000003 + zlib.crc32(key.encode())) % 2 ** 32)
    x = rs.standard_normal(shape)
    if len(shape) >= 2:
        x = x / np.sqrt(np.prod(shape[1:]))
    elif key.endswith("residual.1.weight"):
        x = 1.0 + 0.1 * x
    else:
        x = 0.1 * x
    return x.astype(np.float32)


def seeded_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Published key -> tensor: structural tensors as computed here, the others seeded."""
    return {k: v if is_structural(k) else torch.from_numpy(seeded_array(k, tuple(v.shape), seed))
            for k, v in published_state().items()}


def tensor_sha256(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        a = v.detach().cpu().float().contiguous().numpy()
        h.update(k.encode())
        h.update(str(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_seeded_checkpoint(path: str | Path, seed: int = 0, prefix: str = "module.") -> str:
    """Write ``{"model_state": {prefix + key: tensor}}`` (the published file's layout); returns the
    tensor hash."""
    state = seeded_state(seed)
    torch.save({"model_state": {prefix + k: v for k, v in state.items()}}, path)
    return tensor_sha256(state)
