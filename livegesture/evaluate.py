"""`livegesture evaluate`: generate every clip from its audio alone and print the BEAT2 table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .body.kinematics import approximate_skeleton, forward_kinematics
from .bundle import ModelBundle
from .data import find_clips, load_clip
from .data.beat2 import has_split_table
from .errors import DataError
from .metrics import beat_consistency, face_mse, l1_diversity, lvd
from .motion import Motion


def _eval_clip_files(data_dir: Path, bundle: ModelBundle, split: str | None, ids: Sequence[str] | None):
    if ids:
        return find_clips(data_dir, ids=list(ids))
    if split is not None or has_split_table(data_dir):
        return find_clips(data_dir, split=split or "test")
    held_out = set(bundle.meta.get("val_clips", []))
    trained = set(bundle.meta.get("train_clips", []))
    clips = find_clips(data_dir)
    chosen = [c for c in clips if c.id in held_out] or [c for c in clips if c.id not in trained]
    if not chosen:
        raise DataError(f"{data_dir}: every clip was used to train the model; pass --ids or --split")
    return chosen


def table_metrics(motions: list[Motion], audios: list[np.ndarray], mean_vel: np.ndarray | None,
                  sample_rate: int = 16000) -> dict[str, float]:
    joints = [forward_kinematics(m, zero_trans=True) for m in motions]
    return {"bc": beat_consistency(joints, audios, sample_rate, mean_vel=mean_vel),
            "l1div": l1_diversity(joints)}


@torch.no_grad()
def evaluate_model(model_path: str | os.PathLike, data_dir: str | os.PathLike, split: str | None = None,
                   ids: Sequence[str] | None = None, seed: int = 0, extractor: str | None = None,
                   guidance_scale: float | None = None, progress: bool = True) -> dict[str, Any]:
    """Generate each clip from its audio (whole sequence, zero look-ahead, fixed seed) and compute
    FGD (with the project's extractor, when given), BC, L1div and face (expression) MSE for the
    generated motion beside the same figures for the ground truth."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    from .metrics.evaluate import find_mean_vel, load_mean_vel

    data_dir = Path(data_dir)
    bundle = ModelBundle.load(model_path)
    files = _eval_clip_files(data_dir, bundle, split, ids)
    sampling = bundle.config.sampling
    if guidance_scale is not None:
        sampling = replace(sampling, guidance_scale=guidance_scale)
    gen, real, audios, clip_ids = [], [], [], []
    for f in tqdm(files, desc="generate", unit="clip", disable=not progress):
        clip = load_clip(f)
        if clip.motion is None or clip.audio is None:
            continue
        tokens = bundle.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=seed,
                                              sampling=sampling)
        m = bundle.tokens_to_motion(tokens[0])
        n = min(len(m), len(clip.motion))
        gen.append(m[:n])
        real.append(clip.motion[:n])
        audios.append(clip.audio)
        clip_ids.append(f.id)
    if not gen:
        raise DataError(f"{data_dir}: no clip with both motion and audio to evaluate")
    mv_path = find_mean_vel(data_dir)
    mv = load_mean_vel(mv_path) if mv_path is not None else None
    rows = {"generated": table_metrics(gen, audios, mv), "ground_truth": table_metrics(real, audios, mv)}
    fm = face_mse(gen, real)
    rows["generated"]["face_mse"] = fm.value
    rows["generated"]["lvd"] = lvd(gen, real).value
    rows["ground_truth"]["face_mse"] = 0.0
    rows["ground_truth"]["lvd"] = 0.0
    fgd_note = "no --extractor given (train one with `livegesture train fgd-extractor`)"
    if extractor is not None:
        from .metrics.extractor import FgdExtractor, fgd

        ext = FgdExtractor.load(extractor)
        rows["generated"]["fgd"] = fgd(ext, gen, real)
        rows["ground_truth"]["fgd"] = 0.0
        fgd_note = f"extractor {extractor}"
    return {"model": str(model_path), "data": str(data_dir), "clips": clip_ids,
            "frames": int(sum(len(m) for m in gen)), "seed": seed, "sampling": sampling.__dict__,
            "rows": rows, "fgd": fgd_note, "face": f"{fm.label}",
            "joints": approximate_skeleton().label,
            "bc_mean_vel": str(mv_path) if mv_path else "mean speed per joint of the clips (not comparable with published BC)"}


def format_table(res: dict[str, Any]) -> str:
    cols = [("FGD", "fgd", 1.0), ("BC", "bc", 1.0), ("L1div", "l1div", 1.0), ("face MSE", "face_mse", 1.0),
            ("LVD", "lvd", 1.0)]
    lines = [f"{len(res['clips'])} clip(s), {res['frames']} frames, seed {res['seed']}: {', '.join(res['clips'])}",
             f"{'':14s}" + "".join(f"{c[0]:>12s}" for c in cols)]
    for row in ("generated", "ground_truth"):
        vals = res["rows"][row]
        lines.append(f"{row:14s}" + "".join(
            f"{vals[k] * s:12.4f}" if k in vals and vals[k] is not None else f"{'n/a':>12s}"
            for _, k, s in cols))
    lines += [f"FGD: {res['fgd']}", f"face: {res['face']} (no SMPL-X body model)",
              f"joints: {res['joints']}", f"BC mean speeds: {res['bc_mean_vel']}"]
    return "\n".join(lines)
