"""Checks a command runs on its inputs and outputs before any long work: a failure is one line and
exit code 2 (a :class:`LiveGestureError`), never a traceback after minutes of generation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import AudioError, LiveGestureError


def writable_output(path: Path, what: str, inputs: tuple[Path, ...] = ()) -> Path:
    """`path` can be written: not a folder, not one of the command's `inputs`, and its nearest
    existing parent is a folder this process can create files in (probed with a temporary file,
    which also catches read-only and pseudo file systems that permission bits do not show)."""
    path = Path(path)
    if path.is_dir():
        raise LiveGestureError(f"{what} {path}: is a folder; give a file name")
    for p in inputs:
        if Path(p).exists() and path.exists() and os.path.samefile(p, path):
            raise LiveGestureError(f"{what} {path}: is the input file; give another name")
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise LiveGestureError(f"{what} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".livegesture-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LiveGestureError(f"{what} {path}: cannot write in {existing} ({exc.strerror or exc})") from None
    return path


def distinct_outputs(**paths: Path | None) -> None:
    """Two outputs of one command must not be the same file (the second would replace the first)."""
    seen: dict[Path, str] = {}
    for name, p in paths.items():
        if p is None:
            continue
        key = Path(p).absolute()
        if key in seen:
            raise LiveGestureError(f"--{seen[key]} and --{name} are the same file ({p})")
        seen[key] = name


def speech_long_enough(audio: np.ndarray, path: Path, sample_rate: int = 16000) -> None:
    """At least one motion token of audio (133 ms): shorter speech gives no frame at all."""
    from ..engine import token_end_sample

    need = token_end_sample(0) * sample_rate / 16000
    if len(audio) < need:
        raise AudioError(f"{path}: {1000 * len(audio) / sample_rate:.0f} ms of audio is shorter than one motion "
                         f"token ({1000 * need / sample_rate:.0f} ms); no frame can be generated from it")
