"""A FAKE SMPL-X model npz for tests: the keys and shapes of the licensed file, made-up values.

It has the real vertex count (the ``smplx`` package picks extra keypoints by vertex
ids up to 9929), 300 shape + 100 expression components and zero pose blend
shapes; most arrays are sparse and the file is written compressed (a few MB).
Joint j's rest position is planted exactly: its J_regressor row averages 4
vertices placed symmetrically around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livegesture.body.constants import NUM_JOINTS, PARENTS
from livegesture.body.skeleton import approximate_rest_joints

N_VERTS = 10475
N_FACES = 2000
N_SHAPE, N_EXPR = 300, 100
#: vertices 0..219 belong to the 55 joints (4 each); the face vertices follow
FACE_VERTS = np.arange(4 * NUM_JOINTS, 4 * NUM_JOINTS + 400)


@dataclass(frozen=True)
class FakeSmplx:
    path: Path
    rest_joints: np.ndarray        # (55, 3) planted rest joints (zero betas)
    v_template: np.ndarray
    shapedirs: np.ndarray
    j_regressor: np.ndarray


def write_fake_smplx(path: str | Path, seed: int = 0, n_random_betas: int = 10,
                     n_random_expr: int = 10) -> FakeSmplx:
    rng = np.random.default_rng(seed)
    path = Path(path)
    rest = approximate_rest_joints() + rng.normal(0, 0.01, (NUM_JOINTS, 3))
    v = np.zeros((N_VERTS, 3))
    jr = np.zeros((NUM_JOINTS, N_VERTS))
    weights = np.zeros((N_VERTS, NUM_JOINTS))
    for j in range(NUM_JOINTS):
        d1, d2 = rng.normal(0, 0.02, 3), rng.normal(0, 0.02, 3)
        idx = np.arange(4 * j, 4 * j + 4)
        v[idx] = rest[j] + np.stack([d1, -d1, d2, -d2])
        jr[j, idx] = 0.25
        weights[idx, j] = 1.0
    # face vertices around the head/jaw, skinned to jaw (22) and head (15)
    fv = FACE_VERTS
    v[fv] = rest[22] + rng.normal(0, 0.05, (len(fv), 3))
    w_jaw = rng.uniform(0, 1, len(fv))
    weights[fv, 22] = w_jaw
    weights[fv, 15] = 1 - w_jaw
    # every other vertex: scattered around a random joint, rigidly attached to it
    rest_v = np.setdiff1d(np.arange(N_VERTS), np.concatenate([np.arange(4 * NUM_JOINTS), fv]))
    owner = rng.integers(0, NUM_JOINTS, len(rest_v))
    v[rest_v] = rest[owner] + rng.normal(0, 0.03, (len(rest_v), 3))
    weights[rest_v, owner] = 1.0

    shapedirs = np.zeros((N_VERTS, 3, N_SHAPE + N_EXPR), np.float32)
    shapedirs[:, :, :n_random_betas] = rng.normal(0, 0.01, (N_VERTS, 3, n_random_betas))
    shapedirs[fv, :, N_SHAPE:N_SHAPE + n_random_expr] = \
        rng.normal(0, 0.005, (len(fv), 3, n_random_expr))

    kintree = np.stack([np.array(PARENTS, np.int64), np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the licensed file (uint32 -1)
    faces = rng.integers(0, N_VERTS, (N_FACES, 3)).astype(np.int64)
    lmk_faces_idx = rng.integers(0, N_FACES, 51).astype(np.int64)
    bary = rng.uniform(0, 1, (51, 3))
    bary /= bary.sum(1, keepdims=True)
    arrays = dict(
        v_template=v.astype(np.float32), shapedirs=shapedirs,
        posedirs=np.zeros((N_VERTS, 3, (NUM_JOINTS - 1) * 9), np.float32),
        J_regressor=jr.astype(np.float32), weights=weights.astype(np.float32),
        kintree_table=kintree, f=faces, lmk_faces_idx=lmk_faces_idx,
        lmk_bary_coords=bary.astype(np.float32),
        hands_componentsl=np.eye(45, dtype=np.float32),
        hands_componentsr=np.eye(45, dtype=np.float32),
        hands_meanl=rng.normal(0, 0.1, 45).astype(np.float32),
        hands_meanr=rng.normal(0, 0.1, 45).astype(np.float32),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    # what load_skeleton must return: the float32-stored template regressed
    planted = arrays["J_regressor"].astype(np.float64) @ arrays["v_template"].astype(np.float64)
    return FakeSmplx(path, planted, arrays["v_template"], shapedirs, arrays["J_regressor"])
