"""A simple skinned mannequin built from the rest skeleton (not the SMPL-X body mesh).

One ellipsoid per bone (parent -> child segment), rigidly bound to the parent joint, plus a
head, eyes, a chin on the jaw, finger tips and toes, so that an exported skeleton shows as a
figure in any viewer without the licensed SMPL-X model. Coordinates are those of the rest
joints (metres, +Y up, +Z forward, +X the body's left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..body.constants import JOINT_NAMES, NUM_JOINTS, PARENTS

__all__ = ["MannequinMesh", "build_mannequin"]

_J = {n: i for i, n in enumerate(JOINT_NAMES)}
_EYES = (_J["left_eye"], _J["right_eye"])
_LEFT, _RIGHT, _CENTRE = (0.20, 0.43, 0.84), (0.92, 0.47, 0.12), (0.70, 0.72, 0.76)
_SKIN = (0.96, 0.87, 0.78)


@dataclass(frozen=True)
class MannequinMesh:
    """Triangle mesh in the rest pose; every vertex is bound to one joint with weight 1."""

    positions: np.ndarray   # (V, 3) float32
    normals: np.ndarray     # (V, 3) float32, unit
    colors: np.ndarray      # (V, 3) float32, linear RGB
    joints: np.ndarray      # (V,) uint8, the joint each vertex follows
    indices: np.ndarray     # (F, 3) uint32, counter-clockwise seen from outside


def _radius(child: int) -> float:
    """Half-thickness (m) of the bone that ends at `child`."""
    name = JOINT_NAMES[child]
    if child >= 25:
        return 0.009 if "thumb" in name else 0.008
    if name.endswith("wrist"):
        return 0.033
    if name.endswith("elbow"):
        return 0.045
    if name.endswith(("shoulder", "collar")):
        return 0.05
    if name.endswith("knee"):
        return 0.075
    if name.endswith("ankle"):
        return 0.055
    if name.endswith("foot"):
        return 0.04
    if name.endswith("hip"):
        return 0.07
    if name.startswith("spine"):
        return 0.11
    if name == "neck":
        return 0.05
    return 0.04


def _colour(j: int) -> tuple[float, float, float]:
    name = JOINT_NAMES[j]
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _CENTRE


def _ellipsoid(a: np.ndarray, b: np.ndarray, radius: float, extend: float, sides: int = 10,
               rings: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ellipsoid around segment a-b (lengthened by `extend` at both ends): points, normals, faces."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    z = axis / length
    ref = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(ref, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    half = length / 2 + extend
    centre = (a + b) / 2
    semi = np.array([radius, radius, half])
    theta = np.linspace(0.0, np.pi, rings + 1)[1:-1]           # polar angle, poles added apart
    phi = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    unit = np.stack([st * np.cos(phi), st * np.sin(phi), np.repeat(ct, sides, axis=1)],
                    axis=-1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], unit, [[0.0, 0.0, -1.0]]])
    basis = np.stack([x, y, z])                                  # rows: local axes in world
    pts = centre + (unit * semi) @ basis
    nrm = (unit / semi) @ basis
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    faces = []
    top, bottom = 0, len(unit) - 1
    ring = lambda r, s: 1 + r * sides + s % sides  # noqa: E731
    for s in range(sides):
        faces.append((top, ring(0, s), ring(0, s + 1)))
        faces.append((bottom, ring(rings - 2, s + 1), ring(rings - 2, s)))
        for r in range(rings - 2):
            faces.append((ring(r, s), ring(r + 1, s), ring(r + 1, s + 1)))
            faces.append((ring(r, s), ring(r + 1, s + 1), ring(r, s + 1)))
    faces = np.asarray(faces, np.int64)
    # orient faces outwards (the basis may be left-handed for some axis choices)
    tri = pts[faces]
    out = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                    tri.mean(1) - centre)
    faces[out < 0] = faces[out < 0][:, ::-1]
    return pts, nrm, faces


def build_mannequin(rest_joints: np.ndarray) -> MannequinMesh:
    """The mannequin of a rest skeleton (55, 3) metres."""
    rest = np.asarray(rest_joints, np.float64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[float, float, float]]] = []

    def add(a, b, radius, joint, colour=None, extend=None):
        if np.linalg.norm(np.asarray(b) - np.asarray(a)) < 1e-6:
            return
        p, n, f = _ellipsoid(np.asarray(a, float), np.asarray(b, float), radius,
                             radius * 0.6 if extend is None else extend)
        parts.append((p, n, f, joint, colour or _colour(joint)))

    for c in range(1, NUM_JOINTS):
        p = PARENTS[c]
        if c in _EYES or JOINT_NAMES[c] == "jaw":
            continue
        if JOINT_NAMES[c] == "head":          # neck-to-head: the neck
            add(rest[p], rest[c], 0.045, p)
            continue
        add(rest[p], rest[c], _radius(c), p)
        if c not in PARENTS and c >= 25:      # finger tip beyond the last joint
            add(rest[c], rest[c] + 0.8 * (rest[c] - rest[p]), _radius(c) * 0.9, c)
    head, jaw = rest[_J["head"]], rest[_J["jaw"]]
    add(head + [0.0, -0.02, 0.02], head + [0.0, 0.16, 0.02], 0.095, _J["head"], _SKIN, extend=0.0)
    add(jaw + [0.0, -0.01, 0.02], jaw + [0.0, -0.03, 0.09], 0.035, _J["jaw"], _SKIN, extend=0.01)
    for e in _EYES:
        add(rest[e] - [0.0, 0.0, 0.005], rest[e] + [0.0, 0.0, 0.005], 0.014, e, (0.1, 0.1, 0.12),
            extend=0.008)
    for foot in ("left_foot", "right_foot"):   # toes forward of the foot joint
        j = _J[foot]
        add(rest[j], rest[j] + [0.0, -0.02, 0.07], 0.035, j)
    pos, nrm, col, jnt, idx = [], [], [], [], []
    base = 0
    for p, n, f, joint, colour in parts:
        pos.append(p)
        nrm.append(n)
        col.append(np.tile(colour, (len(p), 1)))
        jnt.append(np.full(len(p), joint))
        idx.append(f + base)
        base += len(p)
    return MannequinMesh(np.concatenate(pos).astype(np.float32), np.concatenate(nrm).astype(np.float32),
                         np.concatenate(col).astype(np.float32), np.concatenate(jnt).astype(np.uint8),
                         np.concatenate(idx).astype(np.uint32))
