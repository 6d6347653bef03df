"""FBX export through Blender's own FBX exporter (needs Blender as a Python module, ``bpy``).

The motion goes to a temporary .glb (:func:`~livegesture.export.write_gltf`), which a separate
Python process imports with Blender's glTF importer and writes with its FBX exporter
(:mod:`.blender_fbx`). A separate process keeps Blender's global state, threads and bundled
libraries out of the caller's process. Without bpy, :class:`BlenderMissingError` says how to get it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..body.kinematics import Skeleton
from ..errors import LiveGestureError, OutputError
from .gltf import write_gltf
from .paths import check_output_path

__all__ = ["BlenderMissingError", "blender_available", "require_blender", "write_fbx"]

BLENDER_HINT = ("FBX export needs Blender as a Python module: pip install 'livegesture[blender]' "
                "(the bpy 4.2 wheel, Python 3.11)")


class BlenderMissingError(LiveGestureError):
    """bpy (Blender as a Python module) is not installed."""


def blender_available() -> bool:
    """Whether ``import bpy`` would find Blender as a Python module (without importing it)."""
    return importlib.util.find_spec("bpy") is not None


def require_blender() -> None:
    if not blender_available():
        raise BlenderMissingError(BLENDER_HINT)


def write_fbx(motion, path: str | os.PathLike, skeleton: Skeleton | None = None,
              root_in_place: bool = False, timeout: float = 600.0) -> Path:
    """Write `motion` as FBX (skeleton, mannequin and baked animation at ``motion.fps``)."""
    require_blender()
    path = check_output_path(path, "FBX file")
    script = Path(__file__).with_name("blender_fbx.py")
    with tempfile.TemporaryDirectory(prefix="livegesture-fbx-") as tmp:
        glb = write_gltf(motion, Path(tmp) / "motion.glb", skeleton=skeleton, root_in_place=root_in_place)
        out = Path(tmp) / "motion.fbx"
        env = {**os.environ, "PYTHONNOUSERSITE": "1"}
        proc = subprocess.run([sys.executable, str(script), str(glb), str(out), repr(float(motion.fps)),
                               str(len(motion))], capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LiveGestureError(f"Blender's FBX export failed: {tail[0]}")
        try:
            os.replace(out, path)
        except OSError:  # another file system: copy
            import shutil

            try:
                shutil.copyfile(out, path)
            except OSError as exc:
                raise OutputError(f"cannot write the FBX file {path}: {exc.strerror or exc}") from None
    return path
