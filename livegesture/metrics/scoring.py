"""The BEAT2 table of clips under one protocol: BC, L1div, FGD and face errors of generated motion
beside the ground truth, with every figure's skeleton, mean speeds and extractor named.

One function, :func:`score_clips`, serves ``livegesture evaluate`` (generated + ground truth)
and ``livegesture evaluate-gt`` (ground truth only). Each clip comes with its motion cut to
the frames the protocol scores and its whole audio file read as the protocol reads it
(:func:`livegesture.data.beat2.load_clip_audio`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..body.constants import FPS, NUM_JOINTS
from ..body.kinematics import Skeleton, approximate_skeleton, forward_kinematics
from ..motion import Motion
from .beat import joint_speed, protocol_onsets, protocol_sequence_bc
from .diversity import l1_diversity
from .face import EXPRESSION, VERTEX, FaceError, face_signal, protocol_face_errors
from .frechet import frechet_distance, published_frechet_distance
from .protocol import STRICT, Protocol

#: what the published tables print: FGD x 10, face MSE x 1e8, LVD x 1e5 (BC and L1div as they are)
TABLE_SCALE = {"fgd": 10.0, "bc": 1.0, "l1div": 1.0, "face_mse": 1e8, "lvd": 1e5}


@dataclass
class ClipToScore:
    """One clip: the ground truth and (for ``evaluate``) the generated motion, both cut to the
    same scored frames, and the clip's whole audio at 16 kHz as the protocol reads it."""

    id: str
    real: Motion
    generated: Motion | None
    audio: np.ndarray


@dataclass(frozen=True)
class BodyModel:
    """Where joints and face vertices come from: a user's SMPL-X file, or the approximate skeleton."""

    smplx_model: str | os.PathLike | None = None

    @property
    def exact(self) -> bool:
        return self.smplx_model is not None

    def label(self, protocol: Protocol) -> str:
        if not self.exact:
            return approximate_skeleton().label + "; joint figures are approximate"
        hands = ", its mean hand pose added (flat_hand_mean=False)" if protocol.add_hand_mean else ""
        return f"exact SMPL-X joints from {self.smplx_model} with each clip's betas{hands}"

    def skeleton(self, betas: np.ndarray) -> Skeleton:
        if not self.exact:
            return approximate_skeleton()
        from ..body.smplx_model import load_skeleton

        return load_skeleton(self.smplx_model, betas=betas)

    def hand_mean(self, protocol: Protocol) -> np.ndarray | None:
        if not (self.exact and protocol.add_hand_mean):
            return None
        from ..body.smplx_model import load_hand_mean

        return load_hand_mean(self.smplx_model)

    def face_body(self, betas: np.ndarray, protocol: Protocol):
        if not self.exact:
            return None
        from ..body.smplx_model import SmplxBody

        return SmplxBody(self.smplx_model, betas=betas, flat_hand_mean=not protocol.add_hand_mean)


def protocol_joints(motion: Motion, protocol: Protocol, skeleton: Skeleton | None = None,
                    hand_mean: np.ndarray | None = None) -> np.ndarray:
    """Joint positions (T, 55, 3) as the protocol's code computes them: translation 0 (all
    protocols), the root orientation 0 (``evaltools``), the model's mean hand pose added to the
    hand joints when `hand_mean` (30, 3) is given (the published ``flat_hand_mean=False``)."""
    poses = np.asarray(motion.poses, np.float64).reshape(len(motion), NUM_JOINTS, 3).copy()
    if protocol.zero_root_orient:
        poses[:, 0] = 0.0
    if hand_mean is not None:
        poses[:, 25:55] += hand_mean
    return forward_kinematics(poses=poses, skeleton=skeleton, zero_trans=True)


def clip_features(extractor: Any, motion: Motion, clip_id: str = "") -> np.ndarray:
    """FGD features of one clip: its 6D poses (pytorch3d convention) through the extractor
    (the published one cuts the clip to a multiple of 32 frames)."""
    from ..errors import DataError
    from .extractor import motion_to_6d

    try:
        return extractor.features(motion_to_6d(motion.poses)[None])
    except ValueError as exc:
        raise DataError(f"clip {clip_id or '?'} ({len(motion)} frames): {exc}") from None


def protocol_frechet(a: np.ndarray, b: np.ndarray, protocol: Protocol) -> float | None:
    """The protocol's Fréchet distance; None where the published code gives up (it prints 1e10)."""
    if protocol.frechet == STRICT:
        return frechet_distance(a, b)
    try:
        return published_frechet_distance(a, b, always_offset=protocol.frechet == "eps-always")
    except ValueError:
        return None


def _weighted(scores: Sequence[tuple[float, int]]) -> float | None:
    w = sum(n for _, n in scores)
    return sum(s * n for s, n in scores) / w if w else None


def score_clips(clips: Sequence[ClipToScore], protocol: Protocol, mean_vel: np.ndarray | None,
                body: BodyModel | None = None, extractor: Any = None) -> dict[str, Any]:
    """Rows ``generated`` (when the clips have generated motion) and ``ground_truth`` with ``bc``,
    ``l1div``, ``fgd`` (with an extractor), ``face_mse`` and ``lvd`` as numbers (None where a
    figure cannot be computed), plus per-clip BC and what each figure was computed with.

    `mean_vel` (55,) is the dataset's mean joint speed; None uses the ground-truth clips' own
    mean speed (then BC is not comparable with published figures).
    """
    body = body or BodyModel()
    if not clips:
        raise ValueError("score_clips: no clips")
    with_gen = all(c.generated is not None for c in clips)
    hand_mean = body.hand_mean(protocol)
    kinds = ("generated", "ground_truth") if with_gen else ("ground_truth",)
    joints: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    for c in clips:
        skel = body.skeleton(c.real.betas)
        joints["ground_truth"].append(protocol_joints(c.real, protocol, skel, hand_mean))
        if with_gen:
            joints["generated"].append(protocol_joints(c.generated, protocol, skel, hand_mean))
    mv = mean_vel
    if mv is None:
        mv = np.concatenate([joint_speed(j, FPS) for j in joints["ground_truth"]]).mean(0)

    bc: dict[str, list[tuple[float, int]]] = {k: [] for k in kinds}
    per_clip = []
    for i, c in enumerate(clips):
        n = len(c.real)
        onsets = protocol_onsets(c.audio, n, protocol)
        entry: dict[str, Any] = {"id": c.id, "frames": n, "onsets": int(len(onsets))}
        for k in kinds:
            r = protocol_sequence_bc(joints[k][i], onsets, mv, protocol)
            entry[f"bc_{k}"] = r.score if r.weight else None
            if r.weight:
                bc[k].append((r.score, r.weight))
        per_clip.append(entry)

    rows: dict[str, dict[str, Any]] = {k: {"bc": _weighted(bc[k]), "l1div": l1_diversity(joints[k])}
                                       for k in kinds}
    result: dict[str, Any] = {"rows": rows, "per_clip": per_clip, "skeleton": body.label(protocol)}
    if extractor is not None:
        real_f = np.concatenate([clip_features(extractor, c.real, c.id) for c in clips])
        rows["ground_truth"]["fgd"] = 0.0
        if with_gen:
            gen_f = np.concatenate([clip_features(extractor, c.generated, c.id) for c in clips])
            rows["generated"]["fgd"] = protocol_frechet(gen_f, real_f, protocol)
            result["fgd_features"] = int(len(gen_f))
    if with_gen:
        pairs, kind = [], EXPRESSION
        for c in clips:
            fb = body.face_body(c.real.betas, protocol)
            kind = VERTEX if fb is not None else EXPRESSION
            pairs.append((face_signal(c.generated, fb), face_signal(c.real, fb)))
        mse, lvd = protocol_face_errors(pairs, kind, protocol.face)
        rows["generated"].update(face_mse=mse.value, lvd=lvd.value)
        rows["ground_truth"].update(face_mse=0.0, lvd=0.0)
        result["face"] = FaceError(0.0, kind).label.replace("MSE", "MSE and LVD")
        result["face_kind"] = kind
    return result


def mean_vel_note(path: Path | None) -> str:
    return str(path) if path is not None else ("the clips' own mean joint speeds: no mean_vel_smplxflame_30.npy "
                                              "found or given, so BC is not comparable with published figures")
