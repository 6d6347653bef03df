"""glTF export: the file's structure read back with pygltflib, world joint positions recomputed from
the nodes' TRS by the glTF rules, and the Khronos glTF-Validator (an independent reader)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from livegesture.body import JOINT_NAMES, NUM_JOINTS, PARENTS, Skeleton, approximate_skeleton
from livegesture.body import forward_kinematics
from livegesture.errors import OutputError
from livegesture.export import gltf_bytes, write_gltf
from livegesture.export.gltf import continuous_quaternions
from livegesture.motion import Motion

pygltflib = pytest.importorskip("pygltflib")

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = Path(os.environ.get("LIVEGESTURE_GLTF_VALIDATOR", REPO / ".venv" / "node"))


def random_motion(rng, frames: int = 12, fps: float = 30.0, spread: float = 0.7) -> Motion:
    poses = rng.normal(0.0, spread, (frames, NUM_JOINTS, 3))
    trans = rng.normal(0.0, 0.3, (frames, 3)) + np.array([0.0, 1.3, 0.0])
    return Motion(poses.astype(np.float32), trans.astype(np.float32),
                  np.zeros((frames, 100), np.float32), fps=fps)


def _accessor(g, index: int) -> np.ndarray:
    acc = g.accessors[index]
    view = g.bufferViews[acc.bufferView]
    dtype = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[acc.componentType]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    data = np.frombuffer(g.binary_blob(), dtype, acc.count * width, start)
    return data.reshape(acc.count, width) if width > 1 else data


def _world_positions(g) -> tuple[np.ndarray, np.ndarray]:
    """(T, 55, 3) joint positions of the animation sampled at its keys, by the glTF rules
    (node matrix = T * R * S, world = parent world * local), and the key times."""
    anim = g.animations[0]
    times = _accessor(g, anim.samplers[0].input)
    t = len(times)
    local_t = np.array([np.tile(n.translation or [0, 0, 0], (t, 1)) for n in g.nodes[:NUM_JOINTS]], float)
    local_q = np.array([np.tile(n.rotation or [0, 0, 0, 1], (t, 1)) for n in g.nodes[:NUM_JOINTS]], float)
    for ch in anim.channels:
        out = _accessor(g, anim.samplers[ch.sampler].output)
        (local_t if ch.target.path == "translation" else local_q)[ch.target.node] = out
    parent = {c: j for j, n in enumerate(g.nodes) for c in n.children}
    world = np.zeros((t, NUM_JOINTS, 3))
    rot = [None] * NUM_JOINTS
    for j in range(NUM_JOINTS):  # parents come first in SMPL-X order
        r = Rotation.from_quat(local_q[j]).as_matrix()
        if j in parent:
            p = parent[j]
            world[:, j] = world[:, p] + np.einsum("tij,tj->ti", rot[p], local_t[j])
            rot[j] = rot[p] @ r
        else:
            world[:, j], rot[j] = local_t[j], r
    return world, times


def _load(path) -> "pygltflib.GLTF2":
    return pygltflib.GLTF2().load(str(path))


@pytest.mark.parametrize("fps,frames", [(30.0, 12), (25.0, 5), (30.0, 1)])
def test_nodes_skin_and_animation(tmp_path, rng, fps, frames):
    m = random_motion(rng, frames, fps)
    g = _load(write_gltf(m, tmp_path / "a.glb"))
    assert [n.name for n in g.nodes[:NUM_JOINTS]] == list(JOINT_NAMES)
    for j in range(1, NUM_JOINTS):
        assert j in g.nodes[PARENTS[j]].children
    np.testing.assert_allclose([n.translation for n in g.nodes[1:NUM_JOINTS]],
                               approximate_skeleton().offsets[1:], atol=1e-7)
    assert g.scenes[g.scene].nodes == [0, NUM_JOINTS]
    skin = g.skins[0]
    assert skin.joints == list(range(NUM_JOINTS)) and g.nodes[NUM_JOINTS].skin == 0
    anim = g.animations[0]
    assert len(anim.channels) == NUM_JOINTS + 1 and anim.extras["fps"] == fps
    assert sorted((c.target.node, c.target.path) for c in anim.channels) == sorted(
        [(j, "rotation") for j in range(NUM_JOINTS)] + [(0, "translation")])
    times = _accessor(g, anim.samplers[0].input)
    np.testing.assert_allclose(times, np.arange(frames) / fps, atol=1e-6)
    assert g.accessors[anim.samplers[0].input].max == [pytest.approx((frames - 1) / fps)]


def test_world_positions_equal_forward_kinematics(tmp_path, rng):
    m = random_motion(rng, 20)
    g = _load(write_gltf(m, tmp_path / "a.glb"))
    world, _ = _world_positions(g)
    np.testing.assert_allclose(world, forward_kinematics(m), atol=2e-6)


def test_custom_skeleton_and_root_in_place(tmp_path, rng):
    m = random_motion(rng, 6)
    rest = approximate_skeleton().rest_joints * 1.1 + rng.normal(0, 0.01, (NUM_JOINTS, 3))
    sk = Skeleton(rest, exact=True, label="test")
    g = _load(write_gltf(m, tmp_path / "a.glb", skeleton=sk, root_in_place=True))
    flat = replace(m, trans=m.trans * np.array([0, 1, 0], np.float32))
    np.testing.assert_allclose(_world_positions(g)[0], forward_kinematics(flat, skeleton=sk), atol=2e-6)


def test_bind_pose_and_mannequin(tmp_path, rng):
    """At the bind pose every joint's world matrix times its inverse bind matrix is the identity
    (the mesh sits on the skeleton), each vertex follows one joint, and the mesh covers the body."""
    m = random_motion(rng, 3)
    g = _load(write_gltf(m, tmp_path / "a.glb"))
    ibm = _accessor(g, g.skins[0].inverseBindMatrices).reshape(NUM_JOINTS, 4, 4).transpose(0, 2, 1)
    bind = np.zeros((NUM_JOINTS, 3))
    for j in range(NUM_JOINTS):
        bind[j] = np.asarray(g.nodes[j].translation) + (bind[PARENTS[j]] if j else 0.0)
        assert g.nodes[j].rotation is None
    np.testing.assert_allclose(bind, approximate_skeleton().rest_joints + m.trans[0], atol=1e-6)
    for j in range(NUM_JOINTS):
        world = np.eye(4)
        world[:3, 3] = bind[j]
        np.testing.assert_allclose(world @ ibm[j], np.eye(4), atol=1e-6)
    prim = g.meshes[0].primitives[0]
    pos = _accessor(g, prim.attributes.POSITION)
    joints = _accessor(g, prim.attributes.JOINTS_0)
    weights = _accessor(g, prim.attributes.WEIGHTS_0)
    nrm = _accessor(g, prim.attributes.NORMAL)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-5)
    assert set(np.unique(joints[:, 0])) >= set(range(NUM_JOINTS)) - {0}  # every joint but the root moves part of it
    height = pos[:, 1].max() - pos[:, 1].min()
    assert 1.6 < height < 2.0, height
    idx = _accessor(g, prim.indices)
    assert idx.max() < len(pos) and len(idx) % 3 == 0


def test_quaternions_are_sign_continuous(rng):
    rv = rng.normal(0, 2.0, (50, 3, 3))
    q = continuous_quaternions(rv)
    assert (np.einsum("tjk,tjk->tj", q[1:], q[:-1]) >= 0).all()
    np.testing.assert_allclose(Rotation.from_quat(q.reshape(-1, 4)).as_matrix(),
                               Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix(), atol=1e-9)


def test_bad_inputs(tmp_path, rng):
    m = random_motion(rng, 4)
    with pytest.raises(ValueError, match="empty"):
        gltf_bytes(m[:0])
    with pytest.raises(OutputError, match="cannot write the glTF file .*[Dd]irectory"):
        write_gltf(m, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write the glTF file"):
        write_gltf(m, blocker / "a.glb")


def _validator_dir() -> Path:
    if shutil.which("node") and (VALIDATOR / "node_modules" / "gltf-validator").is_dir():
        return VALIDATOR
    if os.environ.get("CI"):
        pytest.fail(f"CI must have the Khronos glTF-Validator (npm gltf-validator under {VALIDATOR}; "
                    ".ci/run installs it)")
    pytest.skip(f"node or the npm package gltf-validator under {VALIDATOR} is missing")


def test_khronos_validator_reports_no_issue(tmp_path, rng):
    """The Khronos reference validator: no error, warning, info or hint; 55 joints, 1 animation."""
    folder = _validator_dir()
    path = write_gltf(random_motion(rng, 30), tmp_path / "a.glb")
    script = Path(__file__).with_name("gltf_validate.mjs")
    proc = subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GLTF_VALIDATOR_DIR": str(folder)})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    issues = report["issues"]
    assert (issues["numErrors"], issues["numWarnings"], issues["numInfos"], issues["numHints"]) == (0, 0, 0, 0), \
        issues["messages"]
    assert report["info"]["animationCount"] == 1 and report["info"]["hasSkins"]
