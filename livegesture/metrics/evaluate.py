"""Evaluation runner: the BEAT2 figures of a data folder's clips under a named protocol.

Clips are found and loaded through the data layer (:func:`livegesture.data.find_clips`,
:func:`~livegesture.data.load_clip`, :func:`~livegesture.data.load_clip_audio`); what is
scored is decided by :mod:`livegesture.metrics.protocol` and computed by
:mod:`livegesture.metrics.scoring`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..body.constants import NUM_JOINTS
from ..data.beat2 import MEAN_VEL_FILE, find_mean_vel  # noqa: F401  (re-exported)
from ..errors import DataError
from ..motion import Motion
from .protocol import Protocol, get_protocol, scored_frames
from .scoring import TABLE_SCALE, BodyModel, ClipToScore, mean_vel_note, score_clips


def load_mean_vel(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such mean joint speed file")
    try:
        mv = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable mean speed file ({exc})") from None
    mv = np.asarray(mv, dtype=np.float64).reshape(-1)
    if mv.shape != (NUM_JOINTS,) or not np.isfinite(mv).all():
        raise DataError(f"{path}: expected 55 finite mean joint speeds, got shape {mv.shape}")
    return mv


def resolve_mean_vel(data_dir: str | os.PathLike, mean_vel: str | os.PathLike | np.ndarray | None
                     ) -> tuple[np.ndarray | None, str]:
    """(mean speeds or None, where they come from) for `mean_vel` given as a file, an array or None
    (then found beside the data, see :func:`find_mean_vel`)."""
    if isinstance(mean_vel, (str, os.PathLike)):
        return load_mean_vel(mean_vel), str(mean_vel)
    if mean_vel is not None:
        return np.asarray(mean_vel, dtype=np.float64).reshape(NUM_JOINTS), "given array"
    found = find_mean_vel(data_dir)
    return (load_mean_vel(found) if found is not None else None), mean_vel_note(found)


def check_smplx(smplx_model: str | os.PathLike | None) -> BodyModel:
    """The body model to use; a missing SMPL-X file fails here, before any clip is loaded."""
    if smplx_model is not None:
        from ..body.smplx_model import resolve_model_path

        return BodyModel(resolve_model_path(smplx_model))
    return BodyModel()


def clip_to_score(files: Any, protocol: Protocol, generated: Motion | None = None,
                  data: Any = None) -> ClipToScore | None:
    """Load one clip (motion and audio cut to the shorter by the data layer, the audio file read
    again as the protocol reads it) and cut motions to the frames the protocol scores; None for a
    clip without motion frames. `data` is the clip already loaded by :func:`~livegesture.data.load_clip`."""
    from ..data import load_clip, load_clip_audio

    data = data if data is not None else load_clip(files)
    if data.motion is None or len(data.motion) == 0:
        return None
    audio = load_clip_audio(files, protocol.audio)
    n = scored_frames(protocol, len(data.motion), len(audio))
    if generated is not None:
        n = min(n, len(generated))
    real = data.motion[:n]
    gen = None
    if generated is not None:
        gen = generated[:n]
        gen.betas = np.asarray(real.betas).copy()  # the published loop scores both with the clip's betas
    return ClipToScore(files.id, real, gen, audio)


def evaluate_ground_truth(data_dir: str | os.PathLike, split: str | None = None,
                          ids: Sequence[str] | None = None, protocol: str | Protocol = "beat2",
                          smplx_model: str | os.PathLike | None = None,
                          mean_vel: str | os.PathLike | np.ndarray | None = None,
                          progress: bool = True) -> dict[str, Any]:
    """BC and L1div of the real motion + audio clips of `data_dir` (optionally one `split` or
    `ids`) under `protocol` (default ``beat2``, the published test loop).

    Joints come from forward kinematics with translation 0, using a user's SMPL-X file (each
    clip's betas) when given, else the approximate neutral skeleton; the result says which. BC
    uses `mean_vel` (a (55,) array or file), else ``mean_vel_smplxflame_30.npy`` found beside
    the data, else the clips' own mean speeds (``mean_vel`` says which).
    """
    from tqdm.auto import tqdm

    from ..data import find_clips

    proto = get_protocol(protocol)
    body = check_smplx(smplx_model)
    mv, mv_source = resolve_mean_vel(data_dir, mean_vel)
    files = find_clips(data_dir, split=split, ids=list(ids) if ids else None, require=("motion", "audio"))
    clips = [c for c in (clip_to_score(f, proto) for f in tqdm(files, desc="evaluate", unit="clip",
                                                                  disable=not progress)) if c is not None]
    if not clips:
        raise DataError(f"{data_dir}: no clip with both motion frames and audio")
    scored = score_clips(clips, proto, mv, body)
    return {"data": str(data_dir), "split": split, "clips": [c.id for c in clips],
            "frames": int(sum(len(c.real) for c in clips)),
            **describe(proto, scored["skeleton"], mv_source, None),
            "rows": scored["rows"], "per_clip": scored["per_clip"]}


def describe(protocol: Protocol, skeleton: str, mean_vel_source: str, extractor: str | None) -> dict[str, Any]:
    """What every table and JSON names: protocol, skeleton, mean speeds and extractor."""
    return {"protocol": {"name": protocol.name, "source": protocol.source,
                         "comparable_with_published": protocol.comparable},
            "skeleton": skeleton, "mean_vel": mean_vel_source,
            "extractor": extractor or "none (no --extractor: no FGD)", "table_scale": dict(TABLE_SCALE)}


def format_table(res: dict[str, Any]) -> str:
    """The table as the published ones print it (FGD x10; face vertex MSE x1e8 and LVD x1e5), and what
    every figure was computed with."""
    scale = res.get("table_scale", TABLE_SCALE)

    def head(name: str, key: str) -> str:
        s = scale.get(key, 1.0)
        return name if s == 1.0 else f"{name} x{s:g}"

    cols = [(head("FGD", "fgd"), "fgd"), ("BC", "bc"), ("L1div", "l1div"), (head("MSE", "face_mse"), "face_mse"),
            (head("LVD", "lvd"), "lvd")]
    rows = res["rows"]
    cols = [c for c in cols if any(c[1] in rows[r] for r in rows)]
    clips = res["clips"]
    head = f"{len(clips)} clip(s), {res['frames']} frames"
    if "seed" in res:
        head += f", seed {res['seed']}"
    if res.get("precision", "float32") != "float32":
        head += f", {res['precision']} model step"
    lines = [f"{head}: {', '.join(clips[:8])}{' ...' if len(clips) > 8 else ''}",
             f"{'':14s}" + "".join(f"{c[0]:>12s}" for c in cols)]
    for name, vals in rows.items():
        cells = []
        for _, k in cols:
            v = vals.get(k)
            cells.append(f"{v * scale.get(k, 1.0):12.4f}" if isinstance(v, (int, float)) else f"{'n/a':>12s}")
        lines.append(f"{name:14s}" + "".join(cells))
    p = res["protocol"]
    lines += [f"protocol: {p['name']} - {p['source']}",
              f"skeleton: {res['skeleton']}",
              f"extractor: {res['extractor']}",
              f"BC mean speeds: {res['mean_vel']}"]
    if "face" in res:
        lines.append(f"face: {res['face']}")
    return "\n".join(lines)
