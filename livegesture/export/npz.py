"""BEAT2-layout npz export: :meth:`Motion.save` already writes it (keys, dtypes, ``mocap_frame_rate``).

The SMPL-X Blender add-on imports the file as is (Y-up data).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_npz(motion, path: str | os.PathLike) -> Path:
    """Write `motion` as a BEAT2 ``smplxflame_30``-style npz (same as ``motion.save(path)``)."""
    return motion.save(path)


__all__ = ["write_npz"]
