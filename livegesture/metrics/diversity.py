"""L1 diversity (L1div) of joint positions, BEAT2 convention (docs/design.md §8)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def l1_diversity(joints: np.ndarray | Sequence[np.ndarray]) -> float:
    """Sum over frames of |x - the sequence's mean pose| (L1 over all joints and coordinates),
    summed over sequences and divided by the total number of frames.

    `joints` is one (T, J, 3) array or a list of them, computed with translation 0
    (``forward_kinematics(..., zero_trans=True)``), as the published numbers are.
    A still pose gives 0.
    """
    if isinstance(joints, np.ndarray) and joints.ndim == 3:
        joints = [joints]
    total, frames = 0.0, 0
    for j in joints:
        x = np.asarray(j, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"l1_diversity: each sequence must be (T, J, 3), got {x.shape}")
        if len(x) == 0:
            continue
        total += float(np.abs(x - x.mean(axis=0, keepdims=True)).sum())
        frames += len(x)
    if frames == 0:
        raise ValueError("l1_diversity: no frames")
    return total / frames
