"""Exact SMPL-X body from a user's licensed model file (``SMPLX_NEUTRAL.npz`` and friends).

Two things need the real model: exact rest joints for forward kinematics
(:func:`load_skeleton`) and mesh vertices for the face metric (:class:`SmplxBody`).
Neither file ships with the project; without one, :func:`approximate_skeleton`
is used and every figure computed with it says so.

Conventions (BEAT2): SMPL-X 2020 files carry 300 shape + 100 expression
components in ``shapedirs``; older files carry 10 + 10. Hand poses are taken as
full rotations (``flat_hand_mean=True``), which is what :func:`forward_kinematics`
does with the poses it is given. The public BEAT2/EMAGE evaluation code builds
its model with ``flat_hand_mean=False``, i.e. it adds the file's mean hand pose
before skinning (finger joints change); the published evaluation protocols do the same
(:func:`load_hand_mean`, ``SmplxBody(flat_hand_mean=False)``).
"""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from .constants import NUM_EXPRESSIONS, NUM_JOINTS
from .kinematics import Skeleton

#: keys :func:`load_skeleton` reads from the model npz
SKELETON_KEYS = ("v_template", "shapedirs", "J_regressor")
#: keys the ``smplx`` package needs to build an SMPL-X model (ext="npz", no face contour)
SMPLX_KEYS = ("v_template", "shapedirs", "J_regressor", "posedirs", "kintree_table", "weights",
              "f", "lmk_faces_idx", "lmk_bary_coords", "hands_componentsl", "hands_componentsr",
              "hands_meanl", "hands_meanr")
#: shape components of a full SMPL-X 2020 file (then 100 expression components follow)
SHAPE_SPACE_DIM = 300


def resolve_model_path(model_path: str | os.PathLike, gender: str = "neutral") -> Path:
    """The SMPL-X ``.npz``: `model_path` itself, or ``SMPLX_<GENDER>[_2020].npz`` in a folder."""
    path = Path(model_path)
    if path.is_dir():
        g = gender.upper()
        # the 2020 model first: the one BEAT2 and its published evaluation use
        names = (f"SMPLX_{g}_2020.npz", f"SMPLX_{g}.npz", f"smplx/SMPLX_{g}_2020.npz",
                 f"smplx/SMPLX_{g}.npz")
        for name in names:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no SMPL-X model file in this folder (looked for "
                              f"{', '.join(names)}); pass the .npz file itself or download the "
                              "licensed model from https://smpl-x.is.tue.mpg.de")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such SMPL-X model file")
    if path.suffix != ".npz":
        raise CheckpointError(f"{path}: expected an SMPL-X .npz model file (the .pkl release is "
                              "not supported; use the npz one)")
    return path


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise CheckpointError(f"{path}: not an SMPL-X model file, missing key(s) "
                                      f"{', '.join(missing)}")
            try:
                return {k: np.asarray(data[k]) for k in keys}
            except ValueError as exc:  # object arrays need pickle: refuse them
                raise CheckpointError(f"{path}: unreadable SMPL-X model entry ({exc})") from None
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{path}: unreadable npz ({exc.__class__.__name__}: {exc})") from None


@functools.lru_cache(maxsize=2)
def _skeleton_arrays(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    """The arrays :func:`load_skeleton` needs, read once per file version (evaluation loops
    build one skeleton per clip from each clip's betas)."""
    arrays = _read_npz(Path(path), SKELETON_KEYS)
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def _shape_components(shapedirs: np.ndarray) -> int:
    """Shape (beta) components of a shapedirs array, by the smplx package's convention."""
    n = shapedirs.shape[-1]
    return SHAPE_SPACE_DIM if n >= SHAPE_SPACE_DIM + NUM_EXPRESSIONS else min(n, 10)


def load_skeleton(model_path: str | os.PathLike, betas: np.ndarray | None = None,
                  gender: str = "neutral") -> Skeleton:
    """Exact rest joints of a licensed SMPL-X model:
    ``J_regressor @ (v_template + shapedirs·betas)``.

    `model_path` is the ``.npz`` file or a folder holding ``SMPLX_<GENDER>.npz``
    (or ``..._2020.npz``). `betas` (any length) uses as many shape components as
    the file has; None means the mean shape. Only the first 55 joints are used.
    Raises :class:`CheckpointError` for a missing or malformed file.
    """
    path = resolve_model_path(model_path, gender)
    st = path.stat()
    d = _skeleton_arrays(str(path.resolve()), st.st_mtime_ns, st.st_size)
    v, sd, jr = d["v_template"], d["shapedirs"], d["J_regressor"]
    n_v = v.shape[0] if v.ndim == 2 else -1
    problems = []
    if v.ndim != 2 or v.shape[1] != 3:
        problems.append(f"v_template has shape {v.shape}, expected (V, 3)")
    if sd.ndim != 3 or sd.shape[:2] != (n_v, 3):
        problems.append(f"shapedirs has shape {sd.shape}, expected ({n_v}, 3, K)")
    if jr.ndim != 2 or jr.shape[0] < NUM_JOINTS or jr.shape[1] != n_v:
        problems.append(f"J_regressor has shape {jr.shape}, expected (>=55, {n_v})")
    if problems:
        raise CheckpointError(f"{path}: malformed SMPL-X model: " + "; ".join(problems))
    shaped = v.astype(np.float64)
    label = f"exact SMPL-X rest joints from {path.name}"
    if betas is not None:
        b = np.asarray(betas, dtype=np.float64).reshape(-1)
        k = min(len(b), _shape_components(sd))
        shaped = shaped + np.einsum("vck,k->vc", sd[..., :k].astype(np.float64), b[:k])
        label += f" ({k} betas)"
    rest = jr[:NUM_JOINTS].astype(np.float64) @ shaped
    return Skeleton(rest_joints=rest, exact=True, label=label)


def load_hand_mean(model_path: str | os.PathLike, gender: str = "neutral") -> np.ndarray:
    """(30, 3) axis-angle mean hand pose of a SMPL-X file (left hand joints 25..39, then right).

    The published BEAT2 evaluation builds its model with ``flat_hand_mean=False``, so the
    ``smplx`` package adds this mean to the hand poses it is given before skinning: joints
    that follow that code must do the same (:func:`livegesture.metrics.scoring.protocol_joints`).
    """
    path = resolve_model_path(model_path, gender)
    d = _read_npz(path, ("hands_meanl", "hands_meanr"))
    left, right = (np.asarray(d[k], np.float64).reshape(-1) for k in ("hands_meanl", "hands_meanr"))
    if left.shape != (45,) or right.shape != (45,):
        raise CheckpointError(f"{path}: hands_meanl/hands_meanr have shapes {left.shape}/{right.shape}, "
                              "expected (45,)")
    return np.concatenate([left, right]).reshape(30, 3)


class SmplxBody:
    """A licensed SMPL-X model (through the ``smplx`` package) for mesh vertices.

    ``face_vertices(jaw, expressions)`` poses only the jaw and the expressions (every
    other joint at rest, no translation), as the BEAT2 face metric does. ``flat_hand_mean=False``
    adds the file's mean hand pose to the hand poses, as the published evaluation code builds it.
    """

    def __init__(self, model_path: str | os.PathLike, gender: str = "neutral",
                 betas: np.ndarray | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 256, flat_hand_mean: bool = True) -> None:
        import smplx

        self.path = resolve_model_path(model_path, gender)
        d = _read_npz(self.path, ("shapedirs",))  # validates the file before smplx asserts
        sd = d["shapedirs"]
        self.num_betas = _shape_components(sd)
        full = sd.shape[-1] >= SHAPE_SPACE_DIM + NUM_EXPRESSIONS
        self.num_expressions = NUM_EXPRESSIONS if full else max(0, min(10, sd.shape[-1] - 10))
        _read_npz(self.path, SMPLX_KEYS)
        try:
            self.model = smplx.SMPLX(str(self.path), gender=gender, ext="npz",
                                     num_betas=self.num_betas,
                                     num_expression_coeffs=self.num_expressions,
                                     use_pca=False, flat_hand_mean=flat_hand_mean,
                                     use_face_contour=False).to(device).eval()
        except (AssertionError, KeyError, IndexError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{self.path}: the smplx package cannot build an SMPL-X model "
                                  f"from it ({exc.__class__.__name__}: {exc})") from None
        self.device = torch.device(device)
        self.batch_size = batch_size
        b = np.zeros(self.num_betas) if betas is None else np.asarray(betas, np.float64).reshape(-1)
        bb = np.zeros(self.num_betas)
        bb[:min(len(b), self.num_betas)] = b[:self.num_betas]
        self.betas = torch.tensor(bb, dtype=torch.float32, device=self.device)[None]

    @property
    def num_vertices(self) -> int:
        return int(self.model.v_template.shape[0])

    @torch.no_grad()
    def forward(self, poses: np.ndarray, trans: np.ndarray | None = None,
                expressions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (T, V, 3) and the first 55 joints (T, 55, 3) of axis-angle poses (T, 55, 3)."""
        poses = np.asarray(poses, np.float32).reshape(-1, NUM_JOINTS, 3)
        n = len(poses)
        trans = np.zeros((n, 3), np.float32) if trans is None else np.asarray(trans, np.float32)
        expr = np.zeros((n, NUM_EXPRESSIONS), np.float32) if expressions is None \
            else np.asarray(expressions, np.float32).reshape(n, -1)
        verts, joints = [], []
        for s in range(0, n, self.batch_size):
            p = torch.from_numpy(poses[s:s + self.batch_size]).to(self.device)
            b = len(p)
            e = torch.from_numpy(expr[s:s + b, :self.num_expressions]).to(self.device)
            out = self.model(betas=self.betas.expand(b, -1), global_orient=p[:, 0],
                             body_pose=p[:, 1:22].reshape(b, -1), jaw_pose=p[:, 22],
                             leye_pose=p[:, 23], reye_pose=p[:, 24],
                             left_hand_pose=p[:, 25:40].reshape(b, -1),
                             right_hand_pose=p[:, 40:55].reshape(b, -1), expression=e,
                             transl=torch.from_numpy(trans[s:s + b]).to(self.device))
            verts.append(out.vertices.cpu().numpy())
            joints.append(out.joints[:, :NUM_JOINTS].cpu().numpy())
        if not verts:
            return np.zeros((0, self.num_vertices, 3), np.float32), np.zeros((0, NUM_JOINTS, 3),
                                                                             np.float32)
        return np.concatenate(verts), np.concatenate(joints)

    def face_vertices(self, jaw: np.ndarray, expressions: np.ndarray) -> np.ndarray:
        """Vertices (T, V, 3) with only the jaw pose (T, 3) and expressions (T, 100) applied."""
        jaw = np.asarray(jaw, np.float32).reshape(-1, 3)
        poses = np.zeros((len(jaw), NUM_JOINTS, 3), np.float32)
        poses[:, 22] = jaw
        return self.forward(poses, None, expressions)[0]
