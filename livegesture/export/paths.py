"""Output files: checked before long work, written atomically, errors as one clear line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import OutputError

__all__ = ["check_output_path", "distinct_outputs", "write_atomic"]


def check_output_path(path: str | os.PathLike, what: str = "output",
                      inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Raise :class:`OutputError` (one line, exit code 2) unless `path` can be written.

    Called by the commands before any long work, so that a typo in an output path fails at once
    rather than after minutes of generation: `path` must not be a folder nor one of the command's
    `inputs`, and its nearest existing parent must be a folder this process can create files in
    (probed with a temporary file, which also catches read-only and pseudo file systems that
    permission bits do not show). Nothing is created: the writers make missing folders.
    """
    path = Path(path)

    def fail(reason: str) -> None:
        raise OutputError(f"cannot write the {what} {path}: {reason}")

    if path.is_dir():
        fail("it is a folder; give a file name")
    for p in inputs:
        if Path(p).exists() and path.exists() and os.path.samefile(p, path):
            fail("it is the input file; give another name")
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        fail(f"{existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".livegesture-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        fail(f"cannot write in {existing} ({exc.strerror or exc})")
    return path


def distinct_outputs(**paths: str | os.PathLike | None) -> None:
    """Two outputs of one command must not be the same file (the second would replace the first)."""
    seen: dict[Path, str] = {}
    for name, p in paths.items():
        if p is None:
            continue
        key = Path(p).absolute()
        if key in seen:
            raise OutputError(f"--{seen[key]} and --{name} are the same file ({p})")
        seen[key] = name


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
