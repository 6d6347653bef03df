"""Atomic training checkpoints (resumable) loaded without running code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """Write to a temporary file in the same folder, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True`` (no pickled code runs)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or not a checkpoint
        raise CheckpointError(f"{path}: cannot read training checkpoint ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
