"""Leg kinematics for foot planting: forward kinematics of the two legs and a two-bone IK.

Plain float64 3x3 algebra on one frame (the clean-up stages walk frames one by one). The IK moves
the knee about its own hinge axis (local x in SMPL-X: positive = flexion) so that the hip–ankle
distance matches the target, keeping the side of straight the knee was on (no flip from the
model's pose), then swings the hip by the smallest rotation that points the leg at the target,
and finally sets the ankle's local rotation so the foot has the wanted world orientation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LEGS", "LegFrame", "leg_frames", "rotation_between", "solve_leg"]

#: (hip, knee, ankle, foot) joints of the left and right leg (BEAT2 order)
LEGS: tuple[tuple[int, int, int, int], ...] = ((1, 4, 7, 10), (2, 5, 8, 11))
#: joints whose local rotations the legs' forward kinematics needs
FK_JOINTS = (0, 1, 2, 4, 5, 7, 8)
_ROW = {j: i for i, j in enumerate(FK_JOINTS)}


@dataclass
class LegFrame:
    """One leg on one frame: world positions and rotations, and the local rotations of its joints."""

    pelvis_rot: np.ndarray   # (3, 3) world rotation of the pelvis (the hip's parent)
    hip_pos: np.ndarray
    knee_pos: np.ndarray
    ankle_pos: np.ndarray
    foot_pos: np.ndarray
    hip_rot: np.ndarray      # world rotations
    knee_rot: np.ndarray
    ankle_rot: np.ndarray
    local: np.ndarray        # (3, 3, 3) local rotations of hip, knee, ankle

    def shift(self, delta: np.ndarray) -> None:
        """Move the leg by `delta` (3,) in the world (the root was moved)."""
        for p in (self.hip_pos, self.knee_pos, self.ankle_pos, self.foot_pos):
            p += delta


def leg_frames(rot: np.ndarray, trans: np.ndarray, rest_root: np.ndarray, offsets: np.ndarray
               ) -> tuple[LegFrame, LegFrame]:
    """Both legs of one frame from the local rotation matrices `rot` (7, 3, 3) of ``FK_JOINTS`` and
    `trans` (3,), placed as :func:`livegesture.body.forward_kinematics` places them (`rest_root`:
    the pelvis rest position, `offsets`: the skeleton's child-minus-parent rest offsets)."""
    g0 = rot[0]
    p0 = rest_root + trans
    legs = []
    for hip, knee, ankle, foot in LEGS:
        r_h, r_k, r_a = rot[_ROW[hip]], rot[_ROW[knee]], rot[_ROW[ankle]]
        p_h = p0 + g0 @ offsets[hip]
        g_h = g0 @ r_h
        p_k = p_h + g_h @ offsets[knee]
        g_k = g_h @ r_k
        p_a = p_k + g_k @ offsets[ankle]
        g_a = g_k @ r_a
        legs.append(LegFrame(g0, p_h, p_k, p_a, p_a + g_a @ offsets[foot], g_h, g_k, g_a,
                             np.stack([r_h, r_k, r_a])))
    return legs[0], legs[1]


def _skew(w: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u x v of two 3-vectors (np.cross costs ~20x more on one pair)."""
    return np.array([u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]])


def rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector `u` to unit vector `v` (Rodrigues, no trigonometry)."""
    w = _cross(u, v)
    c = float(u @ v)
    if c < -1.0 + 1e-12:  # opposite: half a turn about any axis perpendicular to u
        a = _cross(u, np.array([1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0]))
        a /= np.linalg.norm(a)
        return 2.0 * np.outer(a, a) - np.eye(3)
    k = _skew(w)
    return np.eye(3) + k + (k @ k) / (1.0 + c)


def _towards_sphere(e: np.ndarray, f: np.ndarray, r2: float) -> np.ndarray:
    """e + s f for the smallest s in [0, 1] with |e + s f|^2 = r2 (|e|^2 > r2 >= |e + f|^2)."""
    qa, qb, qc = float(f @ f), 2.0 * float(e @ f), float(e @ e) - r2
    disc = max(qb * qb - 4.0 * qa * qc, 0.0)
    s = min(1.0, (-qb - math.sqrt(disc)) / (2.0 * qa)) if qa > 0 else 0.0
    return e + max(s, 0.0) * f


def _rot_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def solve_leg(leg: LegFrame, target_pos: np.ndarray, target_rot: np.ndarray, shin: np.ndarray,
              max_hyperextension: float, fallback: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """Local rotations (3, 3, 3) of hip, knee and ankle that put the ankle at `target_pos` with world
    rotation `target_rot`; also the ankle's world position reached and its distance to the target
    after any giving way (see `fallback`; 0 unless out of reach). A knee the model hyperextended stays so while that needs no
    more than the model's own hyperextension or `max_hyperextension` (rad); past that it flexes.
    `shin` is the ankle's rest offset from the knee. With a reachable `fallback` point (e.g. where the
    model put the ankle), a target out of reach is first moved towards it until the straight leg
    reaches it: the foot gives way as little as the leg's length forces."""
    thigh = leg.knee_pos - leg.hip_pos
    l1, l2 = math.sqrt(float(thigh @ thigh)), math.sqrt(float(shin @ shin))
    # hip-ankle distance after flexing the knee by phi about its local x: |d|^2 = l1^2 + l2^2 + 2 f(phi)
    u = leg.knee_rot.T @ thigh  # hip -> knee in the knee's frame: f(phi) = u . Rx(phi) shin = a + b cos + c sin
    a = u[0] * shin[0]
    b = u[1] * shin[1] + u[2] * shin[2]
    c = u[2] * shin[1] - u[1] * shin[2]
    m = math.hypot(b, c)
    psi = math.atan2(c, b)  # phi of the straightest leg
    to_target = target_pos - leg.hip_pos
    longest = l1 * l1 + l2 * l2 + 2.0 * (a + m)  # squared hip-ankle distance of the straight leg
    if fallback is not None and float(to_target @ to_target) > longest:
        to_target = _towards_sphere(to_target, fallback - target_pos, longest)
    d2 = float(to_target @ to_target)
    want = (0.5 * (d2 - l1 * l1 - l2 * l2) - a) / max(m, 1e-12)
    alpha = math.acos(min(1.0, max(-1.0, want)))
    if psi <= 0.0 or alpha > max(max_hyperextension, psi):
        phi = psi + alpha  # flexed side of straight (where the model's knee is, or it would over-extend)
    else:
        phi = psi - alpha  # the model's knee is hyperextended: stay on its side, no further than it was
    r_knee = leg.local[1] @ _rot_x(phi)
    g_knee = leg.hip_rot @ r_knee
    ankle_pos = leg.knee_pos + g_knee @ shin
    cur = ankle_pos - leg.hip_pos
    n_cur, n_tgt = math.sqrt(float(cur @ cur)), math.sqrt(d2)
    swing = rotation_between(cur / n_cur, to_target / n_tgt) if n_tgt > 1e-9 else np.eye(3)
    g_hip = swing @ leg.hip_rot
    r_hip = leg.pelvis_rot.T @ g_hip
    g_knee = g_hip @ r_knee
    r_ankle = g_knee.T @ target_rot
    reached = leg.hip_pos + swing @ cur
    err = reached - (leg.hip_pos + to_target)  # what is left after any giving way
    return np.stack([r_hip, r_knee, r_ankle]), reached, math.sqrt(float(err @ err))
