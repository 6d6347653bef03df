"""Output files: checked before long work, written atomically, errors as one clear line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import OutputError

__all__ = ["check_output_path", "write_atomic"]


def check_output_path(path: str | os.PathLike, what: str = "output") -> Path:
    """Raise :class:`OutputError` unless `path` can be written (its folder is created if missing).

    Called by the commands before generating, so that a typo in an output path fails at once
    rather than after minutes of work.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write the {what} {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    return path


def write_atomic(path: str | os.PathLike, data: bytes | str, what: str = "output") -> Path:
    """Write `data` to `path` through a temporary file in the same folder (no half-written file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            with open(tmp, "w", encoding="ascii", newline="\n") as f:
                f.write(data)
        else:
            with open(tmp, "wb") as f:
                f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
    return path
