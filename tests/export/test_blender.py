"""A real Blender (the bpy wheel) imports our glTF, BVH (default units) and FBX files with its own
importers; the bone heads it computes match the project's forward kinematics.

Blender runs in a separate process (tests/export/blender_probe.py). These tests skip only when
bpy is not installed (``pip install -e ".[test,blender]"``); under CI they fail instead, since
.ci/run installs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livegesture.body import JOINT_NAMES, NUM_JOINTS, forward_kinematics
from livegesture.data.synthetic import synthetic_motion
from livegesture.export import blender_available, write_bvh, write_fbx, write_gltf
from livegesture.motion import Motion

PROBE = Path(__file__).with_name("blender_probe.py")
FRAMES = (0, 1, 17, 40, 89)   # counted from the first key
TOL_M = 0.001                 # 1 mm (the issue asks for 2 cm)


@pytest.fixture(scope="module")
def bpy_ok() -> None:
    if not blender_available():
        if os.environ.get("CI"):
            pytest.fail("CI must have bpy (Blender as a Python module): .ci/run installs '.[test,blender]'")
        pytest.skip("bpy (Blender as a Python module) is not installed: pip install -e '.[blender]'")


def blender_probe(tmp_path: Path, files: dict[str, Path], frames=FRAMES) -> dict:
    out = tmp_path / "probe.json"
    args = [sys.executable, str(PROBE), str(out), *(f"{k}={v}" for k, v in files.items()), "--",
            *map(str, frames)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def blender_to_yup(positions: dict) -> np.ndarray:
    """Blender's Z-up world (x, y, z) -> the SMPL-X/glTF Y-up world (x, z, -y), in joint order."""
    p = np.array([positions[n] for n in JOINT_NAMES])
    return np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1)


def check_import(result: dict, motion: Motion, frames=FRAMES, tol: float = TOL_M) -> dict[int, float]:
    """Bones, frame count and 30 fps as Blender sees them; returns the wrist error (m) per frame."""
    assert result["armatures"] == 1
    assert sorted(result["bones"]) == sorted(JOINT_NAMES) and len(result["bones"]) == NUM_JOINTS
    assert result["last"] - result["first"] + 1 == len(motion) == result["keys"]
    assert result["fps"] == pytest.approx(motion.fps, rel=1e-5)
    fk = forward_kinematics(motion)
    wrist = {}
    for f in frames:
        err = np.linalg.norm(blender_to_yup(result["positions"][str(f)]) - fk[f], axis=1)
        assert err.max() < tol, (f, JOINT_NAMES[int(err.argmax())], err.max())
        wrist[f] = float(err[[JOINT_NAMES.index("left_wrist"), JOINT_NAMES.index("right_wrist")]].max())
    return wrist


def _motion() -> Motion:
    """Synthetic gesture motion with wide extra rotations (every joint, both signs)."""
    m = synthetic_motion(90, seed=5)
    rng = np.random.default_rng(5)
    m.poses = (m.poses + rng.normal(0, 0.35, m.poses.shape)).astype(np.float32)
    m.trans = (m.trans + np.cumsum(rng.normal(0, 0.01, m.trans.shape), 0)).astype(np.float32)
    return m


def test_blender_imports_gltf_bvh_and_fbx(bpy_ok, tmp_path):
    m = _motion()
    files = {"gltf": write_gltf(m, tmp_path / "m.glb"), "bvh": write_bvh(m, tmp_path / "m.bvh"),
             "fbx": write_fbx(m, tmp_path / "m.fbx")}
    result = blender_probe(tmp_path, files)
    for kind in files:
        check_import(result[kind], m)
    assert result["gltf"]["meshes"] == 1 and result["fbx"]["meshes"] == 1  # the mannequin, skinned


@pytest.mark.realdata
def test_blender_imports_a_real_clip(bpy_ok, tmp_path, beat2_dir):
    m = Motion.load(beat2_dir / "2_scott_0_2_2.npz")[:300]
    files = {"gltf": write_gltf(m, tmp_path / "m.glb"), "bvh": write_bvh(m, tmp_path / "m.bvh")}
    frames = (0, 99, 299)
    result = blender_probe(tmp_path, files, frames)
    for kind in files:
        check_import(result[kind], m, frames)
    # human size and upright in Blender's Z-up world: head about 1.5-1.8 m above the feet
    pos = result["bvh"]["positions"]["0"]
    assert 1.4 < pos["head"][2] - min(pos["left_foot"][2], pos["right_foot"][2]) < 1.9
