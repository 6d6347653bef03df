"""Model files: weights in safetensors, config and metadata as JSON inside the same file.

Loading never runs code from the file (no pickle). A file states its kind
('tokenizer', 'livegesture', ...) and the versions that wrote it.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
import safetensors
from safetensors.torch import load_file, save

from .errors import CheckpointError

FORMAT = "livegesture"
_SafetensorError = getattr(safetensors, "SafetensorError", RuntimeError)
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    from . import __version__

    return {"livegesture": __version__, "torch": torch.__version__, "python": platform.python_version()}


def save_model_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], kind: str,
                    meta: dict[str, Any]) -> Path:
    """Write tensors + JSON metadata atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": kind,
              "meta": json.dumps({**meta, "versions": versions()})}
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=header)
    # written by Python, not safetensors' save_file: that one creates its file with mode 0600, while a
    # model file is meant to be shared like any other output (mode 0666 less the umask)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def load_model_file(path: str | os.PathLike, kind: str | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, meta) of a model file; CheckpointError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (_SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors model file ({exc})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a LiveGesture model file (no '{FORMAT}' header)")
    if int(header.get("format_version", "0")) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer LiveGesture (format "
                              f"{header.get('format_version')}); upgrade to read it")
    if kind is not None and header.get("kind") != kind:
        raise CheckpointError(f"{path}: is a '{header.get('kind')}' file, expected '{kind}'")
    try:
        meta = json.loads(header.get("meta", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt metadata ({exc})") from None
    meta["kind"] = header.get("kind")
    return tensors, meta


def load_state_strict(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str,
                      path: str | os.PathLike) -> None:
    """Load `prefix`-ed tensors into `module`; mismatches raise CheckpointError naming keys."""
    sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(sub))
    unexpected = sorted(set(sub) - set(own))
    wrong = sorted(k for k in set(own) & set(sub) if own[k].shape != sub[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(prefix + k for k in missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(prefix + k for k in unexpected[:5])}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(
                f"{prefix + k} {tuple(sub[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:5]))
        raise CheckpointError(f"{path}: weights do not match the model config ({'; '.join(parts)})")
    module.load_state_dict(sub, strict=True)
