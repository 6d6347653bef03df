"""Face metrics: vertex MSE with only jaw + expressions applied, and landmark/vertex velocity
difference (LVD). Without an SMPL-X model file both fall back to expression coefficients
and say so in their result (docs/design.md §8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

from ..motion import Motion

if TYPE_CHECKING:
    from ..body.smplx_model import SmplxBody

FaceInput = Union[Motion, Sequence[Motion]]

VERTEX = "vertex"
EXPRESSION = "expression"


@dataclass(frozen=True)
class FaceError:
    """A face metric value and what it was computed on (``kind``: "vertex" or "expression")."""

    value: float
    kind: str
    metric: str = "mse"
    frames: int = 0

    @property
    def label(self) -> str:
        what = {"mse": "MSE", "lvd": "LVD"}.get(self.metric, self.metric)
        if self.kind == VERTEX:
            return f"face vertex {what} (SMPL-X mesh, jaw + expressions only)"
        return (f"expression-coefficient {what} (no SMPL-X model file; not comparable with "
                "published vertex figures)")

    def __float__(self) -> float:
        return self.value


def _pairs(pred: FaceInput, gt: FaceInput) -> list[tuple[Motion, Motion]]:
    ps = [pred] if isinstance(pred, Motion) else list(pred)
    gs = [gt] if isinstance(gt, Motion) else list(gt)
    if len(ps) != len(gs):
        raise ValueError(f"face metric: {len(ps)} predicted clips but {len(gs)} ground-truth clips")
    out = []
    for p, g in zip(ps, gs):
        n = min(len(p), len(g))
        out.append((p[:n], g[:n]))
    return out


def face_signal(m: Motion, body: "SmplxBody | None") -> np.ndarray:
    """(T, D): flattened face vertices (jaw + expressions only) or the expression coefficients."""
    if body is None:
        return np.asarray(m.expressions, dtype=np.float64)
    v = body.face_vertices(m.poses[:, 22], m.expressions)
    return v.reshape(len(m), -1).astype(np.float64)


def face_mse(pred: FaceInput, gt: FaceInput, body: "SmplxBody | None" = None) -> FaceError:
    """Mean squared error of the face, frame-weighted over clips (pairs cropped to the shorter).

    With `body` (an :class:`~livegesture.body.SmplxBody`): MSE of mesh vertices posed with
    only the jaw and the expressions (tables print it × 10⁸). Without: MSE of the 100
    expression coefficients, labelled ``kind="expression"``.
    """
    total, frames = 0.0, 0
    for p, g in _pairs(pred, gt):
        if len(p) == 0:
            continue
        a, b = face_signal(p, body), face_signal(g, body)
        total += float(np.mean((a - b) ** 2)) * len(p)
        frames += len(p)
    if frames == 0:
        raise ValueError("face_mse: no frames")
    return FaceError(total / frames, VERTEX if body is not None else EXPRESSION, "mse", frames)


def lvd(pred: FaceInput, gt: FaceInput, body: "SmplxBody | None" = None) -> FaceError:
    """Velocity difference: mean over frames of |Δpred − Δgt| (mean over vertex coordinates,
    or over expression coefficients without `body`), frame-weighted over clips."""
    total, frames = 0.0, 0
    for p, g in _pairs(pred, gt):
        if len(p) < 2:
            continue
        a, b = face_signal(p, body), face_signal(g, body)
        total += float(np.mean(np.abs(np.diff(a, axis=0) - np.diff(b, axis=0)))) * (len(p) - 1)
        frames += len(p) - 1
    if frames == 0:
        raise ValueError("lvd: needs clips of at least 2 frames")
    return FaceError(total / frames, VERTEX if body is not None else EXPRESSION, "lvd", frames)


def protocol_face_errors(pairs: Sequence[tuple[np.ndarray, np.ndarray]], kind: str,
                         protocol: str = "strict") -> tuple[FaceError, FaceError]:
    """(MSE, LVD) of (predicted, ground-truth) face signals (T, D) per clip (:func:`face_signal`),
    as `protocol` (a :class:`~livegesture.metrics.protocol.Protocol` ``face`` value) defines them.

    ``beat2`` (EMAGE 2024 test loop): MSE = mean squared error per clip, weighted by T; "LVD" =
    ``L1(rec[1:] - tar[:-1], tar[1:] - tar[:-1])`` per clip, weighted by T, which is the mean
    absolute error of frames 1..T-1. ``evaltools``: squared error and |Δpred − Δgt| summed
    over clips, each divided by the sum of T x D. ``strict``: :func:`face_mse` and :func:`lvd`.
    """
    mse_sum = lvd_sum = 0.0
    mse_n = lvd_n = 0
    for p, g in pairs:
        p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
        t = len(p)
        if t == 0:
            continue
        mse_sum += float(np.mean((p - g) ** 2)) * t if protocol != "evaltools" else float(np.sum((p - g) ** 2))
        mse_n += t if protocol != "evaltools" else p.size
        if t < 2:
            continue
        if protocol == "beat2":
            lvd_sum += float(np.mean(np.abs((p[1:] - g[:-1]) - (g[1:] - g[:-1])))) * t
            lvd_n += t
        elif protocol == "evaltools":
            lvd_sum += float(np.sum(np.abs(np.diff(p, axis=0) - np.diff(g, axis=0))))
            lvd_n += p.size
        else:
            lvd_sum += float(np.mean(np.abs(np.diff(p, axis=0) - np.diff(g, axis=0)))) * (t - 1)
            lvd_n += t - 1
    if mse_n == 0 or lvd_n == 0:
        raise ValueError("face metrics: needs clips of at least 2 frames")
    frames = sum(len(p) for p, _ in pairs)
    return (FaceError(mse_sum / mse_n, kind, "mse", frames), FaceError(lvd_sum / lvd_n, kind, "lvd", frames))
