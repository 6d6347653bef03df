"""glTF 2.0 binary (.glb) export of a Motion: SMPL-X skeleton, skinned mannequin, animation.

What the file holds (written with pygltflib):

* one node per SMPL-X joint, named as :data:`~livegesture.body.constants.JOINT_NAMES`, in the
  SMPL-X hierarchy; a node's rest ``translation`` is its offset from its parent (the approximate
  neutral skeleton unless a :class:`~livegesture.body.Skeleton` is given), its rest rotation is
  the identity (SMPL-X's rest pose); the rest pose stands at the clip's first root position;
* a skin over the 55 joint nodes (inverse bind matrices of the rest pose) and a mannequin mesh
  bound to it (:mod:`.mannequin`, not the SMPL-X body), so the figure shows in any viewer;
* one animation, ``livegesture``: per joint a ``rotation`` channel (the joint's local SMPL-X
  rotation as a unit quaternion x, y, z, w, made sign-continuous so that interpolation takes
  the short way) and on the pelvis a ``translation`` channel (rest pelvis + ``trans``), key
  times ``k / fps`` s (LINEAR); ``extras.fps`` records the frame rate.

Axes and units are glTF's and SMPL-X's alike: metres, right-handed, +Y up, the body facing +Z.
World joint positions of the animated nodes equal :func:`livegesture.body.forward_kinematics`.
The motion is exported as given: root-in-place and foot clean-up are decided upstream (the
engine's defaults, ``root_in_place`` here for the horizontal drift).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.constants import JOINT_NAMES, NUM_JOINTS, PARENTS
from ..body.kinematics import Skeleton, approximate_skeleton
from .mannequin import build_mannequin
from .paths import write_atomic

__all__ = ["write_gltf", "gltf_bytes", "continuous_quaternions"]

_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_FLOAT, _UNSIGNED_BYTE, _UNSIGNED_INT = 5126, 5121, 5125
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


def continuous_quaternions(rotvecs: np.ndarray) -> np.ndarray:
    """Unit quaternions (T, J, 4) x, y, z, w of axis-angle rotations (T, J, 3), each joint's
    sign chosen so that consecutive frames are within 180 degrees (q and -q are the same
    rotation; linear interpolation between keys of opposite sign would spin the long way)."""
    rv = np.asarray(rotvecs, np.float64)
    t, j = rv.shape[:2]
    q = Rotation.from_rotvec(rv.reshape(-1, 3)).as_quat().reshape(t, j, 4)
    if t > 1:
        flips = np.einsum("tjk,tjk->tj", q[1:], q[:-1]) < 0
        sign = np.cumprod(np.where(flips, -1.0, 1.0), axis=0)
        q[1:] *= sign[..., None]
    return q


class _Blob:
    """The binary chunk: buffer views and accessors appended in order, 4-byte aligned."""

    def __init__(self, gltf) -> None:
        self.gltf, self.data = gltf, bytearray()

    def add(self, array: np.ndarray, component: int, width: int, target: int | None = None,
            minmax: bool = False, normalized: bool = False) -> int:
        import pygltflib as g

        arr = np.ascontiguousarray(array)
        while len(self.data) % 4:
            self.data.append(0)
        offset = len(self.data)
        self.data += arr.tobytes()
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=offset, byteLength=arr.nbytes,
                                                  target=target))
        rows = arr.reshape(len(arr), -1) if arr.ndim > 1 else arr.reshape(-1, 1)
        acc = g.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component,
                         count=len(rows), type=_TYPES[width], normalized=normalized or None)
        if minmax:
            acc.min = [float(v) for v in rows.min(0)]
            acc.max = [float(v) for v in rows.max(0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def gltf_bytes(motion, skeleton: Skeleton | None = None, root_in_place: bool = False,
               mesh: bool = True, name: str = "livegesture") -> bytes:
    """The .glb file of `motion` as bytes (see the module docstring for its content)."""
    import pygltflib as g

    from .. import __version__

    n = len(motion)
    if n == 0:
        raise ValueError("cannot export an empty motion")
    if not motion.fps > 0:
        raise ValueError(f"motion.fps must be positive, got {motion.fps}")
    skeleton = skeleton or approximate_skeleton()
    rest = np.asarray(skeleton.rest_joints, np.float64)
    if rest.shape != (NUM_JOINTS, 3):
        raise ValueError(f"skeleton.rest_joints has shape {rest.shape}, expected (55, 3)")
    offsets = np.asarray(skeleton.offsets, np.float64)
    poses = np.asarray(motion.poses, np.float64).reshape(n, NUM_JOINTS, 3)
    trans = np.asarray(motion.trans, np.float64).reshape(n, 3)
    if root_in_place:
        trans = trans * np.array([0.0, 1.0, 0.0])
    root_pos = rest[0] + trans
    quats = continuous_quaternions(poses)
    bind = rest + trans[0]  # the bind (rest) pose stands where the clip starts

    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator=f"LiveGesture {__version__}"))
    blob = _Blob(gltf)
    children = [[c for c in range(NUM_JOINTS) if PARENTS[c] == j] for j in range(NUM_JOINTS)]
    for j in range(NUM_JOINTS):
        t = bind[0] if j == 0 else offsets[j]
        gltf.nodes.append(g.Node(name=JOINT_NAMES[j], translation=[float(v) for v in t],
                                 children=children[j]))
    scene_nodes = [0]
    if mesh:
        m = build_mannequin(bind)
        weights = np.zeros((len(m.positions), 4), np.float32)
        weights[:, 0] = 1.0
        joints4 = np.zeros((len(m.positions), 4), np.uint8)
        joints4[:, 0] = m.joints
        attrs = g.Attributes(
            POSITION=blob.add(m.positions, _FLOAT, 3, _ARRAY_BUFFER, minmax=True),
            NORMAL=blob.add(m.normals, _FLOAT, 3, _ARRAY_BUFFER),
            COLOR_0=blob.add(m.colors, _FLOAT, 3, _ARRAY_BUFFER),
            JOINTS_0=blob.add(joints4, _UNSIGNED_BYTE, 4, _ARRAY_BUFFER),
            WEIGHTS_0=blob.add(weights, _FLOAT, 4, _ARRAY_BUFFER))
        indices = blob.add(m.indices.reshape(-1), _UNSIGNED_INT, 1, _ELEMENT_ARRAY_BUFFER)
        gltf.materials.append(g.Material(
            name="mannequin", pbrMetallicRoughness=g.PbrMetallicRoughness(
                baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0, roughnessFactor=0.7)))
        gltf.meshes.append(g.Mesh(name="mannequin", primitives=[
            g.Primitive(attributes=attrs, indices=indices, material=0, mode=4)]))
        # inverse bind matrices: the rest pose has identity rotations, so each is a translation
        ibm = np.tile(np.eye(4, dtype=np.float32), (NUM_JOINTS, 1, 1))
        ibm[:, :3, 3] = -bind
        ibm_acc = blob.add(np.ascontiguousarray(ibm.transpose(0, 2, 1)).reshape(NUM_JOINTS, 16),
                           _FLOAT, 16)  # glTF matrices are column-major
        gltf.skins.append(g.Skin(name="smplx", joints=list(range(NUM_JOINTS)),
                                 inverseBindMatrices=ibm_acc, skeleton=0))
        gltf.nodes.append(g.Node(name="mannequin", mesh=0, skin=0))
        scene_nodes.append(len(gltf.nodes) - 1)

    times = blob.add(np.arange(n, dtype=np.float32) / np.float32(motion.fps), _FLOAT, 1, minmax=True)
    samplers, channels = [], []
    for j in range(NUM_JOINTS):
        samplers.append(g.AnimationSampler(input=times, interpolation="LINEAR",
                                           output=blob.add(quats[:, j].astype(np.float32), _FLOAT, 4)))
        channels.append(g.AnimationChannel(sampler=j, target=g.AnimationChannelTarget(node=j,
                                                                                      path="rotation")))
    samplers.append(g.AnimationSampler(input=times, interpolation="LINEAR",
                                       output=blob.add(root_pos.astype(np.float32), _FLOAT, 3)))
    channels.append(g.AnimationChannel(sampler=NUM_JOINTS,
                                       target=g.AnimationChannelTarget(node=0, path="translation")))
    gltf.animations.append(g.Animation(name=name, samplers=samplers, channels=channels,
                                       extras={"fps": float(motion.fps), "frames": n}))
    gltf.scenes.append(g.Scene(name=name, nodes=scene_nodes))
    gltf.scene = 0
    gltf.buffers.append(g.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    return b"".join(gltf.save_to_bytes())


def write_gltf(motion, path: str | os.PathLike, skeleton: Skeleton | None = None,
               root_in_place: bool = False, mesh: bool = True) -> Path:
    """Write `motion` as a glTF 2.0 binary file (.glb) and return its path.

    `skeleton` gives the rest joints (default: the approximate neutral skeleton;
    :func:`livegesture.body.load_skeleton` for exact ones); `root_in_place` drops the
    horizontal translation; `mesh=False` leaves out the mannequin (skeleton and animation only).
    """
    return write_atomic(path, gltf_bytes(motion, skeleton, root_in_place, mesh), "glTF file")
