"""Motion: one clip in BEAT2 terms, its npz I/O and its per-region features."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from .body.constants import (EYE_JOINTS, FOOT_CONTACT_THRESHOLD_M, FOOT_JOINTS, FPS,
                             MIRROR_PERMUTATION, NUM_BETAS, NUM_EXPRESSIONS, NUM_JOINTS, REGION_DIMS,
                             REGION_JOINTS, REGIONS)
from .body.kinematics import Skeleton, forward_kinematics
from .body.rotations import axis_angle_to_6d, six_d_to_axis_angle
from .errors import DataError

REQUIRED_KEYS = ("poses", "trans", "betas", "expressions")


@dataclass(eq=False)
class Motion:
    """One motion clip: SMPL-X axis-angle poses, translation, FLAME expressions, shape.

    Arrays keep the dtypes they were loaded with so that load -> save -> load is exact.
    """

    poses: np.ndarray          # (T, 55, 3) axis-angle
    trans: np.ndarray          # (T, 3) metres, Y up
    expressions: np.ndarray    # (T, 100)
    betas: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BETAS, np.float32))
    fps: float = FPS
    gender: str = "neutral"
    model: str = "smplx2020"

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses)
        if self.poses.ndim == 2 and self.poses.shape[1] == NUM_JOINTS * 3:
            self.poses = self.poses.reshape(len(self.poses), NUM_JOINTS, 3)
        self.trans = np.asarray(self.trans)
        self.expressions = np.asarray(self.expressions)
        self.betas = np.asarray(self.betas)
        t = len(self.poses)
        problems = []
        if self.poses.shape[1:] != (NUM_JOINTS, 3):
            problems.append(f"poses has shape {self.poses.shape}, expected (T, 55, 3) or (T, 165)")
        if self.trans.shape != (t, 3):
            problems.append(f"trans has shape {self.trans.shape}, expected ({t}, 3)")
        if self.expressions.shape != (t, NUM_EXPRESSIONS):
            problems.append(f"expressions has shape {self.expressions.shape}, expected ({t}, 100)")
        if self.betas.ndim != 1:
            problems.append(f"betas has shape {self.betas.shape}, expected (N,)")
        if problems:
            raise DataError("invalid motion: " + "; ".join(problems))

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.poses)

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def __getitem__(self, index: slice) -> "Motion":
        if not isinstance(index, slice):
            raise TypeError("Motion supports frame slicing only, e.g. motion[30:90]")
        return replace(self, poses=self.poses[index], trans=self.trans[index],
                       expressions=self.expressions[index])

    def __repr__(self) -> str:
        return f"Motion(frames={len(self)}, fps={self.fps:g}, duration={self.duration:.2f}s)"

    @classmethod
    def concatenate(cls, motions: Iterable["Motion"]) -> "Motion":
        ms = list(motions)
        if not ms:
            raise ValueError("concatenate needs at least one Motion")
        if len({m.fps for m in ms}) != 1:
            raise ValueError("cannot concatenate motions with different fps")
        return replace(ms[0], poses=np.concatenate([m.poses for m in ms]),
                       trans=np.concatenate([m.trans for m in ms]),
                       expressions=np.concatenate([m.expressions for m in ms]))

    @classmethod
    def empty(cls, betas: np.ndarray | None = None, fps: float = FPS) -> "Motion":
        return cls(np.zeros((0, NUM_JOINTS, 3), np.float32), np.zeros((0, 3), np.float32),
                   np.zeros((0, NUM_EXPRESSIONS), np.float32),
                   np.zeros(NUM_BETAS, np.float32) if betas is None else betas, fps=fps)

    def mirrored(self) -> "Motion":
        """The left/right mirror image (reflection x -> -x): joints swap sides, each local
        axis-angle (x, y, z) becomes (x, -y, -z), translation x flips. A standard augmentation
        (it doubles the distinct hand poses); FLAME expressions and betas are kept as they are,
        since their bases are not mirror-symmetric by construction."""
        poses = self.poses[:, list(MIRROR_PERMUTATION)] * np.array([1, -1, -1], dtype=self.poses.dtype)
        trans = self.trans * np.array([-1, 1, 1], dtype=self.trans.dtype)
        return replace(self, poses=poses, trans=trans, expressions=self.expressions.copy())

    # -------------------------------------------------------------------- I/O
    @classmethod
    def load(cls, path: str | os.PathLike) -> "Motion":
        """Read a BEAT2 ``smplxflame_30`` npz. Errors name the file and the problem."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such motion file")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in REQUIRED_KEYS if k not in data.files]
                if missing:
                    raise DataError(f"{path}: not a BEAT2 motion npz, missing key(s) "
                                    f"{', '.join(missing)} (has: {', '.join(data.files) or 'none'})")
                arrays = {k: data[k] for k in REQUIRED_KEYS}
                fps = next((float(data[k]) for k in ("mocap_frame_rate", "mocap_framerate", "fps")
                            if k in data.files), float(FPS))
                gender = str(data["gender"]) if "gender" in data.files else "neutral"
                model = str(data["model"]) if "model" in data.files else "smplx2020"
        except DataError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: unreadable npz ({exc.__class__.__name__}: {exc})") from None
        if arrays["poses"].ndim != 2 or arrays["poses"].shape[1] != NUM_JOINTS * 3:
            raise DataError(f"{path}: poses has shape {arrays['poses'].shape}, expected (T, 165)")
        try:
            motion = cls(arrays["poses"].reshape(-1, NUM_JOINTS, 3), arrays["trans"],
                         arrays["expressions"], arrays["betas"], fps=fps, gender=gender, model=model)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        for k in ("poses", "trans", "expressions"):
            if not np.isfinite(getattr(motion, k)).all():
                raise DataError(f"{path}: {k} contains NaN or Inf")
        return motion

    def save(self, path: str | os.PathLike) -> Path:
        """Write a BEAT2-layout npz (keys, dtypes and ``mocap_frame_rate`` as BEAT2 tools expect)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, betas=self.betas, poses=self.poses.reshape(len(self), NUM_JOINTS * 3),
                 expressions=self.expressions, trans=self.trans, model=np.str_(self.model),
                 gender=np.str_(self.gender), mocap_frame_rate=np.int32(round(self.fps)))
        os.replace(tmp, path)
        return path

    # ---------------------------------------------------------------- regions
    def joints(self, skeleton: Skeleton | None = None) -> np.ndarray:
        """Joint positions (T, 55, 3) in metres (approximate skeleton unless one is given)."""
        return forward_kinematics(self, skeleton=skeleton)

    def to_regions(self, skeleton: Skeleton | None = None) -> dict[str, np.ndarray]:
        """Per-region features of docs/design.md §2 (float32): upper 78, hands 180, lower 61, face 106.

        Lower = 9 joints in 6D + translation (x/z per-frame velocity with frame 0
        measured from the origin, absolute y) + 4 foot contacts.
        """
        n = len(self)
        rot6 = axis_angle_to_6d(torch.from_numpy(self.poses.astype(np.float64))).numpy()
        trans = self.trans.astype(np.float64)
        vel = np.diff(trans, axis=0, prepend=np.zeros((1, 3)))
        trans_feat = np.stack([vel[:, 0], trans[:, 1], vel[:, 2]], axis=1)
        feet = self.joints(skeleton)[:, FOOT_JOINTS] if n else np.zeros((0, 4, 3))
        step = np.linalg.norm(np.diff(feet, axis=0, prepend=feet[:1]), axis=-1)
        if n > 1:
            step[0] = step[1]
        contact = (step < FOOT_CONTACT_THRESHOLD_M).astype(np.float64)
        feats = {
            "upper": rot6[:, REGION_JOINTS["upper"]].reshape(n, -1),
            "hands": rot6[:, REGION_JOINTS["hands"]].reshape(n, -1),
            "lower": np.concatenate([rot6[:, REGION_JOINTS["lower"]].reshape(n, -1), trans_feat,
                                     contact], axis=1),
            "face": np.concatenate([rot6[:, 22], self.expressions.astype(np.float64)], axis=1),
        }
        for r in REGIONS:
            assert feats[r].shape == (n, REGION_DIMS[r])
        return {r: f.astype(np.float32) for r, f in feats.items()}

    @classmethod
    def from_regions(cls, features: dict[str, np.ndarray | torch.Tensor],
                     betas: np.ndarray | None = None, fps: float = FPS) -> "Motion":
        """Invert :meth:`to_regions`; translation x/z is integrated from the origin, eyes are identity."""
        f = {r: np.asarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v,
                           dtype=np.float64) for r, v in features.items()}
        lens = {len(v) for v in f.values()}
        if set(f) != set(REGIONS) or len(lens) != 1:
            raise ValueError(f"from_regions needs {REGIONS} with equal lengths, got "
                             f"{ {k: v.shape for k, v in f.items()} }")
        n = lens.pop()
        for r in REGIONS:
            if f[r].shape != (n, REGION_DIMS[r]):
                raise ValueError(f"region {r}: shape {f[r].shape}, expected ({n}, {REGION_DIMS[r]})")
        rot6 = np.zeros((n, NUM_JOINTS, 6))
        rot6[..., 0] = rot6[..., 4] = 1.0  # identity for joints in no region (eyes)
        for r, dims in (("upper", 78), ("hands", 180), ("lower", 54), ("face", 6)):
            rot6[:, REGION_JOINTS[r]] = f[r][:, :dims].reshape(n, -1, 6)
        poses = six_d_to_axis_angle(torch.from_numpy(rot6)).numpy()
        poses[:, EYE_JOINTS] = 0.0
        t = f["lower"][:, 54:57]
        trans = np.stack([np.cumsum(t[:, 0]), t[:, 1], np.cumsum(t[:, 2])], axis=1)
        return cls(poses.astype(np.float32), trans.astype(np.float32),
                   f["face"][:, 6:].astype(np.float32),
                   np.zeros(NUM_BETAS, np.float32) if betas is None else np.asarray(betas),
                   fps=fps)
