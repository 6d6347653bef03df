"""Held-out reconstruction report of the tokenizers (stage-1 autoencoder and stage-2 VQ)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..body.constants import REGIONS
from ..body.rotations import geodesic_angle, six_d_to_matrix
from ..data import find_clips, load_clip, training_features
from ..errors import DataError
from .io import load_tokenizer
from .quantizer import EMAQuantizer

#: rotation dims (6D) at the start of each region's features
ROT_DIMS = {"upper": 78, "hands": 180, "lower": 54, "face": 6}


def rotation_error_deg(pred: np.ndarray, gt: np.ndarray, region: str) -> float:
    """Mean geodesic angle in degrees between predicted and true joint rotations of a region."""
    n = ROT_DIMS[region]
    p = six_d_to_matrix(torch.tensor(pred[:, :n].reshape(len(pred), -1, 6), dtype=torch.float64))
    g = six_d_to_matrix(torch.tensor(gt[:, :n].reshape(len(gt), -1, 6), dtype=torch.float64))
    return float(torch.rad2deg(geodesic_angle(p, g)).mean())


def boundary_jump(clips: Sequence[np.ndarray]) -> float:
    """Mean frame-to-frame change across token boundaries (frame 4k+3 -> 4k+4) over that inside
    tokens, for clips of (T, D) features starting at a token boundary: about 1 for real motion,
    larger where a decoder jumps from one token to the next."""
    at, inside = [], []
    for x in clips:
        d = np.abs(np.diff(np.asarray(x, np.float64), axis=0)).mean(-1)
        edge = np.arange(len(d)) % 4 == 3
        at.append(d[edge])
        inside.append(d[~edge])
    return float(np.concatenate(at).mean() / max(np.concatenate(inside).mean(), 1e-12))


def _errors(pred: np.ndarray, gt: np.ndarray, region: str) -> dict[str, float]:
    out = {"rot_err_deg": rotation_error_deg(pred, gt, region)}
    if region == "face":
        out["expr_l1"] = float(np.abs(pred[:, 6:] - gt[:, 6:]).mean())
    if region == "lower":
        out["trans_l1_m"] = float(np.abs(pred[:, 54:57] - gt[:, 54:57]).mean())
    return out


@torch.no_grad()
def report_tokenizer(model_path: str | Path, data_dir: str | Path,
                     ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Per region: errors of the mean pose, the stage-1 autoencoder and the stage-2 VQ on held-out
    clips (whole sequences), with codebook perplexity, share of codes used and the token-boundary
    jump of each reconstruction (:func:`boundary_jump`)."""
    tok, stats, meta = load_tokenizer(model_path, allow_model=True)
    trained_on = set(meta.get("train_clips", []))
    files = find_clips(data_dir, ids=list(ids) if ids else None, require=("motion",))
    if not ids:
        files = [f for f in files if f.id not in trained_on]
        if not files:
            raise DataError(f"{data_dir}: every clip with motion was used to train {model_path}; "
                            "pass --ids to evaluate on chosen clips")
    feats = []
    for f in files:
        m = load_clip(f).motion
        n = len(m) // 4 * 4
        feats.append(training_features(m[:n]))
    rep: dict[str, Any] = {"model": str(model_path), "clips": [f.id for f in files],
                           "frames": int(sum(len(f["upper"]) for f in feats)),
                           "stages": meta.get("stages", {}), "regions": {}}
    for r in REGIONS:
        stage = int(meta.get("stages", {}).get(r, 0))
        if stage < 1:
            continue
        rt = tok[r]
        gt = np.concatenate([f[r] for f in feats])
        mean = np.broadcast_to(stats.mean[r], gt.shape)
        entry: dict[str, Any] = {"stage": stage, "mean_pose": _errors(mean, gt, r)}
        s1, s2, all_ids = [], [], []
        for f in feats:
            x = torch.from_numpy(stats.normalize(r, f[r]))[None]
            s1.append(stats.denormalize(r, rt.autoencode(x)[0].numpy()))
            if stage >= 2:
                ids_ = rt.encode(x)
                all_ids.append(ids_.reshape(-1))
                s2.append(stats.denormalize(r, rt.decode(ids_)[0].numpy()))
        entry["stage1"] = _errors(np.concatenate(s1), gt, r)

        def jump(clips: list[np.ndarray]) -> float:  # in normalised units, so that every dimension counts
            return boundary_jump([stats.normalize(r, x) for x in clips])

        entry["boundary_jump"] = {"real": jump([f[r] for f in feats]), "stage1": jump(s1)}
        if stage >= 2:
            entry["stage2"] = _errors(np.concatenate(s2), gt, r)
            entry["boundary_jump"]["stage2"] = jump(s2)
            perp, used = EMAQuantizer.usage_stats(torch.cat(all_ids), rt.cfg.codebook_size)
            entry["codebook"] = {"size": rt.cfg.codebook_size, "perplexity": perp, "used": used}
            base = entry["mean_pose"]["rot_err_deg"]
            entry["stage2_vs_mean_pose"] = 1.0 - entry["stage2"]["rot_err_deg"] / base if base else None
        rep["regions"][r] = entry
    return rep


def format_report(rep: dict[str, Any]) -> str:
    lines = [f"tokenizer {rep['model']} on {len(rep['clips'])} held-out clip(s) "
             f"({rep['frames']} frames): {', '.join(rep['clips'])}"]
    tuned = [r for r, e in rep["regions"].items() if e["stage"] >= 3]
    if tuned:
        lines.append(f"decoders fine-tuned on tokens (stage 3): {', '.join(tuned)}; their 'stage 1' column "
                     "runs the continuous latent through that decoder")
    lines.append(f"{'region':7s} {'metric':12s} {'mean pose':>10s} {'stage 1':>10s} {'stage 2':>10s}")
    for r, e in rep["regions"].items():
        for k in e["mean_pose"]:
            s2 = e.get("stage2", {}).get(k)
            lines.append(f"{r:7s} {k:12s} {e['mean_pose'][k]:10.4f} {e['stage1'][k]:10.4f} "
                         f"{'-' if s2 is None else format(s2, '10.4f'):>10s}")
        bj = e["boundary_jump"]
        lines.append(f"{r:7s} token-boundary jump (change across / inside tokens): real {bj['real']:.2f}, "
                     f"stage 1 {bj['stage1']:.2f}" + (f", stage 2 {bj['stage2']:.2f}" if "stage2" in bj else ""))
        if "codebook" in e:
            cb = e["codebook"]
            lines.append(f"{r:7s} codebook: perplexity {cb['perplexity']:.1f} of {cb['size']}, "
                         f"{100 * cb['used']:.1f}% of codes used; stage-2 rotation error "
                         f"{100 * e['stage2_vs_mean_pose']:.1f}% below the mean pose")
    return "\n".join(lines)
