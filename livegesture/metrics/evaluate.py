"""Evaluation runner: BEAT2-convention figures over the clips of a data folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..body.constants import FPS, NUM_JOINTS
from ..body.kinematics import Skeleton, approximate_skeleton, forward_kinematics
from ..data.beat2 import MEAN_VEL_FILE, find_mean_vel  # noqa: F401  (re-exported)
from ..errors import DataError
from .beat import MARGIN_FRAMES, audio_onsets, joint_speed, sequence_beat_consistency
from .diversity import l1_diversity


def load_mean_vel(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    try:
        mv = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable mean speed file ({exc})") from None
    mv = np.asarray(mv, dtype=np.float64).reshape(-1)
    if mv.shape != (NUM_JOINTS,) or not np.isfinite(mv).all():
        raise DataError(f"{path}: expected 55 finite mean joint speeds, got shape {mv.shape}")
    return mv


def evaluate_ground_truth(data_dir: str | os.PathLike, split: str | None = None,
                          smplx_model: str | os.PathLike | None = None,
                          mean_vel: str | os.PathLike | np.ndarray | None = None,
                          progress: bool = True) -> dict[str, Any]:
    """BC and L1div of the real motion + audio clips of `data_dir` (optionally one `split`).

    Joints come from forward kinematics with translation 0 (as in the published
    evaluation code, for both metrics), using the exact rest joints of `smplx_model`
    (each clip's betas) when given, else the approximate neutral skeleton; the result
    says which (``approximate_skeleton``, ``skeleton``). BC uses `mean_vel` (a (55,)
    array or file), else ``mean_vel_smplxflame_30.npy`` found in the folder, else the
    clips' own mean speed per joint (``mean_vel_source`` says which).
    ``bc_published_indexing`` is BC with the public evaluation code's speed-mask
    indexing (see :mod:`livegesture.metrics.beat`), for comparison with published tables.
    """
    from tqdm.auto import tqdm

    from ..data import find_clips, load_clip

    clips = find_clips(data_dir, split=split, require=("motion", "audio"))
    if smplx_model is not None:
        from ..body.smplx_model import load_skeleton, resolve_model_path

        resolve_model_path(smplx_model)  # fail before loading any clip
    if isinstance(mean_vel, (str, os.PathLike)):
        mv_source = str(mean_vel)
        mv = load_mean_vel(mean_vel)
    elif mean_vel is not None:
        mv_source = "given array"
        mv = np.asarray(mean_vel, dtype=np.float64).reshape(NUM_JOINTS)
    else:
        found = find_mean_vel(data_dir)
        mv = load_mean_vel(found) if found is not None else None
        mv_source = str(found) if found is not None else "mean speed per joint of these clips"

    joints_all: list[np.ndarray] = []
    audios: list[np.ndarray] = []
    ids: list[str] = []
    sample_rate = None
    skeleton: Skeleton | None = None
    for clip in tqdm(clips, desc="evaluate", unit="clip", disable=not progress):
        data = load_clip(clip)
        if data.motion is None or data.audio is None or len(data.motion) == 0:
            continue
        if smplx_model is not None:
            skeleton = load_skeleton(smplx_model, betas=data.motion.betas)
        else:
            skeleton = skeleton or approximate_skeleton()
        joints_all.append(forward_kinematics(data.motion, skeleton=skeleton,
                                             zero_trans=True).astype(np.float64))
        audios.append(np.asarray(data.audio, dtype=np.float32))
        ids.append(clip.id)
        sample_rate = data.sample_rate
    if not joints_all:
        raise DataError(f"{data_dir}: no clip with both motion frames and audio")
    if mv is None:
        mv = np.concatenate([joint_speed(j, FPS) for j in joints_all]).mean(0)

    totals = {False: 0.0, True: 0.0}
    bc_weight, per_clip = 0, []
    for cid, j, a in zip(ids, joints_all, audios):
        onsets = audio_onsets(a[:int(round(len(j) / FPS * sample_rate))], sample_rate,
                              crop_s=MARGIN_FRAMES / FPS)
        rs = {pub: sequence_beat_consistency(j, a, sample_rate=sample_rate, mean_vel=mv,
                                             fps=FPS, onsets=onsets, published_indexing=pub)
              for pub in (False, True)}
        w = rs[False].weight
        per_clip.append({"id": cid, "frames": len(j), "onsets": len(onsets),
                         "bc": rs[False].score if w else None,
                         "bc_published_indexing": rs[True].score if w else None})
        if w:
            for pub, r in rs.items():
                totals[pub] += r.score * w
            bc_weight += w
    frames = int(sum(len(j) for j in joints_all))
    approximate = skeleton is None or not skeleton.exact
    label = approximate_skeleton().label if approximate else "exact SMPL-X rest joints from " + \
        str(smplx_model) + " (each clip's betas)"
    return {
        "data": str(data_dir), "split": split, "clips": len(ids), "frames": frames,
        "bc": totals[False] / bc_weight if bc_weight else None,
        "bc_published_indexing": totals[True] / bc_weight if bc_weight else None,
        "bc_frames": bc_weight,
        "bc_margin_frames": MARGIN_FRAMES,
        "l1div": l1_diversity(joints_all), "l1div_frames": frames,
        "approximate_skeleton": approximate, "skeleton": label,
        "mean_vel_source": mv_source, "translation": "zero (as in the BEAT2 evaluation code)",
        "per_clip": per_clip,
    }
