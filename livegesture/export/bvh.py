"""BVH export of a :class:`~livegesture.motion.Motion` (SMPL-X hierarchy, no model file needed).

The file follows the usual SMPL(-X) -> BVH conversion:

* the hierarchy is the 55 SMPL-X joints in BEAT2 order, named as
  :data:`~livegesture.body.constants.JOINT_NAMES`, children written in joint
  order; every leaf (feet, jaw, eyes, finger tips) gets an ``End Site``;
* ``OFFSET`` of a joint = its rest position minus its parent's, from the
  approximate neutral skeleton unless a :class:`~livegesture.body.Skeleton` is
  given (e.g. :func:`livegesture.body.load_skeleton` for exact joints),
  in `units` (default ``"m"``, **metres**: Blender's BVH importer at its default scale 1.0 then
  gives a human-sized figure, where centimetres gave a 150 m one; ``"cm"`` for tools that
  expect centimetres); the root's ``OFFSET`` is
  ``0 0 0`` and its position channels carry the absolute pelvis position, so
  readers that add OFFSET to the channels and readers that replace it agree;
* the root has 6 channels ``Xposition Yposition Zposition`` + 3 rotations, the
  other joints 3 rotations; rotations are each joint's *local* SMPL-X rotation
  as Euler angles in degrees;
* the rotation channels are listed in `channel_order` (default ``ZXY``), with the
  BVH meaning: channels ``Zrotation Xrotation Yrotation`` give the local
  rotation ``R = Rz(z) @ Rx(x) @ Ry(y)`` (intrinsic rotations in the listed
  order; scipy's upper-case ``"ZXY"`` sequence);
* axes are the SMPL-X/BEAT2 ones: Y up, +Z the body's forward at rest, +X the
  body's left; ``Frame Time`` is ``1 / motion.fps``.

``root_in_place=True`` drops the horizontal (X/Z) translation and keeps the
vertical one, so the body stays over the origin (the pelvis still bobs up and
down and keeps its orientation).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..body.constants import JOINT_NAMES, NUM_JOINTS, PARENTS
from ..body.kinematics import Skeleton, approximate_skeleton
from .paths import write_atomic

__all__ = ["write_bvh", "bvh_euler_angles", "bvh_scale", "BVH_UNITS", "CHANNEL_ORDERS"]

#: BVH length units and their size in units per metre
BVH_UNITS: dict[str, float] = {"m": 1.0, "cm": 100.0, "mm": 1000.0, "in": 1.0 / 0.0254}

#: accepted rotation channel orders (any permutation of X, Y, Z)
CHANNEL_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")

_CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS))
_EYES = (JOINT_NAMES.index("left_eye"), JOINT_NAMES.index("right_eye"))


def _check_order(channel_order: str) -> str:
    order = str(channel_order).upper()
    if order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {', '.join(CHANNEL_ORDERS)}, "
                         f"got {channel_order!r}")
    return order


def bvh_scale(units: str | float) -> float:
    """Units per metre of a BVH unit name in :data:`BVH_UNITS` or of a positive number."""
    if isinstance(units, str):
        key = units.strip().lower()
        if key not in BVH_UNITS:
            raise ValueError(f"BVH units must be one of {', '.join(BVH_UNITS)} or a number of units "
                             f"per metre, got {units!r}")
        return BVH_UNITS[key]
    scale = float(units)
    if not scale > 0 or not np.isfinite(scale):
        raise ValueError(f"BVH units per metre must be positive, got {units}")
    return scale


def bvh_euler_angles(rotvecs: np.ndarray, channel_order: str = "ZXY",
                     continuous: bool = True) -> np.ndarray:
    """Euler angles in degrees, (T, J, 3) in channel order, of axis-angle rotations (T, J, 3).

    ``R = R_a(angle[0]) @ R_b(angle[1]) @ R_c(angle[2])`` for ``channel_order = "abc"``,
    which is how BVH readers compose the rotation channels. With `continuous`, each
    joint's angles are made continuous over time (of the two Euler solutions of a
    rotation and its 360-degree multiples, the one nearest the previous frame), so
    that key-frame interpolation in animation tools does not spin through 360 degrees.
    """
    order = _check_order(channel_order)
    rv = np.asarray(rotvecs, dtype=np.float64)
    t, j = rv.shape[:2]
    with warnings.catch_warnings():  # gimbal lock: scipy still returns an equivalent triple
        warnings.simplefilter("ignore", UserWarning)
        eul = Rotation.from_rotvec(rv.reshape(-1, 3)).as_euler(order, degrees=True)
    eul = eul.reshape(t, j, 3)
    if continuous and t > 1:
        eul = _make_continuous(eul)
    return eul


def _make_continuous(eul: np.ndarray) -> np.ndarray:
    """Per joint, pick the Euler solution nearest the previous frame (vectorised over joints)."""
    out = eul.copy()
    # second solution of any Tait-Bryan sequence: (a + 180, 180 - b, c + 180)
    alt = np.stack([eul[..., 0] + 180.0, 180.0 - eul[..., 1], eul[..., 2] + 180.0], axis=-1)
    for i in range(1, len(eul)):
        prev = out[i - 1]
        best, best_d = None, None
        for cand in (eul[i], alt[i]):
            c = cand + 360.0 * np.round((prev - cand) / 360.0)
            d = np.abs(c - prev).sum(-1)
            if best is None:
                best, best_d = c, d
            else:
                take = d < best_d
                best = np.where(take[:, None], c, best)
                best_d = np.where(take, d, best_d)
        out[i] = best
    return out


def _end_site(j: int, offsets: np.ndarray) -> np.ndarray:
    """A leaf's end-site offset: half its own bone along the same direction (eyes: 2 cm forward)."""
    if j in _EYES:
        return np.array([0.0, 0.0, 0.02])
    bone = offsets[j]
    n = np.linalg.norm(bone)
    return bone * 0.5 if n > 1e-6 else np.array([0.0, 0.02, 0.0])


def _format_rows(values: np.ndarray, precision: int) -> str:
    fmt = " ".join([f"%.{precision}f"] * values.shape[1])
    return "\n".join(fmt % tuple(row) for row in values) + ("\n" if len(values) else "")


def write_bvh(motion, path: str | os.PathLike, skeleton: Skeleton | None = None,
              root_in_place: bool = False, units: str | float = "m", channel_order: str = "ZXY",
              precision: int = 6) -> Path:
    """Write `motion` as a BVH file and return its path.

    Parameters
    ----------
    motion : Motion
        Poses (T, 55, 3) axis-angle, trans (T, 3) metres Y-up, fps.
    skeleton : Skeleton, optional
        Rest joints for the offsets; default the approximate neutral skeleton
        (pass :func:`livegesture.body.load_skeleton` output for exact offsets).
    root_in_place : bool
        Keep only the vertical component of the translation (a root that stays in place).
    units : str or float
        Length unit of offsets and root positions: ``"m"`` (default; imports at human size in
        Blender), ``"cm"``, ``"mm"``, ``"in"``, or a number of units per metre.
    channel_order : str
        Rotation channel order, any permutation of "XYZ" (default "ZXY", the common
        mocap order); see :func:`bvh_euler_angles` for the convention.
    precision : int
        Decimals written for offsets and channel values.
    """
    order = _check_order(channel_order)
    scale = bvh_scale(units)
    if not motion.fps > 0:
        raise ValueError(f"motion.fps must be positive, got {motion.fps}")
    skeleton = skeleton or approximate_skeleton()
    rest = np.asarray(skeleton.rest_joints, dtype=np.float64)
    if rest.shape != (NUM_JOINTS, 3):
        raise ValueError(f"skeleton.rest_joints has shape {rest.shape}, expected (55, 3)")
    offsets = np.array(skeleton.offsets, dtype=np.float64)

    rot_channels = " ".join(f"{a}rotation" for a in order)
    lines = ["HIERARCHY"]
    write_order: list[int] = []

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        write_order.append(j)
        if j == 0:
            lines.append(f"ROOT {JOINT_NAMES[j]}")
            off = np.zeros(3)
        else:
            lines.append(f"{ind}JOINT {JOINT_NAMES[j]}")
            off = offsets[j] * scale
        lines.append(f"{ind}{{")
        lines.append(f"{ind}\tOFFSET " + " ".join(f"{v:.{precision}f}" for v in off))
        if j == 0:
            lines.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{ind}\tCHANNELS 3 {rot_channels}")
        if _CHILDREN[j]:
            for c in _CHILDREN[j]:
                emit(c, depth + 1)
        else:
            end = _end_site(j, offsets) * scale
            lines.append(f"{ind}\tEnd Site")
            lines.append(f"{ind}\t{{")
            lines.append(f"{ind}\t\tOFFSET " + " ".join(f"{v:.{precision}f}" for v in end))
            lines.append(f"{ind}\t}}")
        lines.append(f"{ind}}}")

    emit(0, 0)

    n = len(motion)
    trans = np.asarray(motion.trans, dtype=np.float64).reshape(n, 3)
    if root_in_place:
        trans = trans * np.array([0.0, 1.0, 0.0])
    root_pos = (trans + rest[0]) * scale
    eul = bvh_euler_angles(np.asarray(motion.poses, dtype=np.float64).reshape(n, NUM_JOINTS, 3),
                           order)
    values = np.concatenate([root_pos, eul[:, write_order].reshape(n, -1)], axis=1)

    lines += ["MOTION", f"Frames: {n}", f"Frame Time: {1.0 / float(motion.fps):.8f}"]
    return write_atomic(path, "\n".join(lines) + "\n" + _format_rows(values, precision), "BVH file")
