"""`livegesture evaluate`: generate every clip from its audio alone and print the BEAT2 table beside
the ground truth, under a named protocol (default: the published BEAT2 test loop)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .bundle import ModelBundle
from .data import find_clips, load_clip
from .data.beat2 import LAYOUT, SPLIT_CSV, has_split_table
from .errors import DataError
from .metrics.evaluate import (check_smplx, clip_to_score, describe, format_table, resolve_mean_vel)
from .metrics.protocol import get_protocol
from .metrics.scoring import score_clips

__all__ = ["check_out_dir", "evaluate_model", "format_table"]


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


def check_out_dir(out_dir: str | os.PathLike, data_dir: str | os.PathLike) -> Path:
    """Create `out_dir` for the generated clips; refuse the data folder (or one of its BEAT2
    sub-folders), where generated npz files would pass for ground truth, and unwritable places."""
    out, data = Path(out_dir).resolve(), Path(data_dir).resolve()
    if out == data or out in {data / sub for sub, _ in LAYOUT.values()}:
        raise DataError(f"--out-dir {out_dir}: that is the data folder; generated clips there would be "
                        "read as ground truth. Choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".livegesture-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"--out-dir {out_dir}: cannot write there ({exc.strerror or exc})") from None
    return out


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@torch.no_grad()
def evaluate_model(model_path: str | os.PathLike | None, data_dir: str | os.PathLike, split: str | None = None,
                   ids: Sequence[str] | None = None, seed: int = 0, extractor: str | os.PathLike | None = None,
                   guidance_scale: float | None = None, protocol: str = "beat2",
                   smplx_model: str | os.PathLike | None = None,
                   mean_vel: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                   progress: bool = True, precision: str = "float32") -> dict[str, Any]:
    """Generate each clip from its audio (whole sequence, zero look-ahead, fixed seed; the bundled
    demo model when `model_path` is None) and score it beside the ground truth under `protocol`
    (:func:`livegesture.metrics.scoring.score_clips`). `out_dir` receives every generated clip
    as ``<id>.npz`` (BEAT2 layout, the frames that were scored, the clip's betas). `precision`:
    the matrix products of the model step and the decoders (``float32``, or ``int8``, which then runs
    the engine's raw output exactly as ``generate --precision int8 --raw``: docs/design.md §6)."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    from .metrics.extractor import load_extractor

    proto = get_protocol(protocol)
    data_dir = Path(data_dir)
    if model_path is None:
        from .assets import demo_model_path

        model_path = demo_model_path()
    body = check_smplx(smplx_model)
    mv, mv_source = resolve_mean_vel(data_dir, mean_vel)
    ext = load_extractor(extractor) if extractor is not None else None
    out = check_out_dir(out_dir, data_dir) if out_dir is not None else None
    bundle = ModelBundle.load(model_path)
    engine = None
    if precision != "float32":
        from .cleanup import CleanupConfig
        from .engine import LiveGesture

        engine = LiveGesture(bundle, precision)
    files = _eval_clip_files(data_dir, bundle, split, ids)
    sampling = bundle.config.sampling
    if guidance_scale is not None:
        sampling = replace(sampling, guidance_scale=guidance_scale)
    clips, t_gen, t_load = [], 0.0, 0.0
    for f in tqdm(files, desc="generate", unit="clip", disable=not progress):
        t0 = time.perf_counter()
        clip = load_clip(f)
        if clip.motion is None or clip.audio is None or len(clip.motion) == 0:
            continue
        t1 = time.perf_counter()
        if engine is None:
            tokens = bundle.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=seed, sampling=sampling)
            gen = bundle.tokens_to_motion(tokens[0])
        else:  # int8 step and decoders: what `generate --precision int8 --raw` gives
            gen = engine.generate(clip.audio, seed=seed, sampling=sampling, cleanup=CleanupConfig.off())
        t2 = time.perf_counter()
        scored = clip_to_score(f, proto, gen, data=clip)
        clips.append(scored)
        if out is not None:
            scored.generated.save(out / f"{f.id}.npz")
        t_load += (t1 - t0) + (time.perf_counter() - t2)
        t_gen += t2 - t1
    if not clips:
        raise DataError(f"{data_dir}: no clip with both motion and audio to evaluate")
    t0 = time.perf_counter()
    scored = score_clips(clips, proto, mv, body, ext)
    t_score = time.perf_counter() - t0
    ext_label = None
    if ext is not None:
        ext_label = f"{ext.label}: {extractor} (sha256 {file_sha256(extractor)[:16]})"
    res = {"model": str(model_path), "data": str(data_dir), "clips": [c.id for c in clips],
           "frames": int(sum(len(c.real) for c in clips)), "seed": seed, "sampling": sampling.__dict__,
           "precision": precision,
           **describe(proto, scored["skeleton"], mv_source, ext_label),
           "face": scored["face"], "rows": scored["rows"], "per_clip": scored["per_clip"],
           "out_dir": str(out) if out is not None else None,
           "seconds": {"generate": round(t_gen, 3), "load": round(t_load, 3), "score": round(t_score, 3)}}
    if scored.get("face_kind") != "vertex":  # the tables' x1e8 / x1e5 are for mesh vertices
        res["table_scale"].update(face_mse=1.0, lvd=1.0)
    if "fgd_features" in scored:
        res["fgd_features"] = scored["fgd_features"]
    return res
