"""Metric commands: ground-truth evaluation and training the FGD feature extractor."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from .app import app, train_app


def _fmt(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


@app.command("evaluate-gt")
def evaluate_gt(
    data: Path = typer.Option(..., "--data",
                              help="BEAT2 folder or a folder of <id>.npz/.wav clips"),
    split: Optional[str] = typer.Option(None, help="only this split (needs train_test_split.csv)"),
    smplx_model: Optional[Path] = typer.Option(
        None, "--smplx-model", help="licensed SMPL-X model (.npz or its folder) for exact joints"),
    mean_vel: Optional[Path] = typer.Option(
        None, "--mean-vel", help="mean joint speeds (55,) .npy for BC (default: "
        "mean_vel_smplxflame_30.npy in the data folder)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results here"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """BC and L1div of the real motion of a data folder (BEAT2 conventions, docs/design.md §8)."""
    from ..metrics.evaluate import evaluate_ground_truth

    r = evaluate_ground_truth(data, split=split, smplx_model=smplx_model, mean_vel=mean_vel,
                              progress=progress)
    rows = [("clips", str(r["clips"])), ("frames", str(r["frames"])),
            ("BC", f"{_fmt(r['bc'])}  (over {r['bc_frames']} frames)"),
            ("BC, published-code indexing", _fmt(r["bc_published_indexing"])),
            ("L1div", f"{_fmt(r['l1div'], 3)}  (over {r['l1div_frames']} frames)")]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"{k:<{width}}  {v}")
    if r["approximate_skeleton"]:
        typer.echo(f"joints: {r['skeleton']}; figures are approximate "
                   "(pass --smplx-model for exact joints)")
    else:
        typer.echo(f"joints: {r['skeleton']}")
    typer.echo(f"BC mean speeds: {r['mean_vel_source']}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(json.dumps(r, indent=2) + "\n")
        os.replace(tmp, json_out)
        typer.echo(f"wrote {json_out}")


@train_app.command("fgd-extractor")
def train_fgd_extractor_cmd(
    data: Path = typer.Option(..., "--data", help="folder of clips with motion"),
    out: Path = typer.Option(..., "--out", help="extractor file to write (.safetensors)"),
    steps: int = typer.Option(3000, help="optimizer steps"),
    batch_size: int = typer.Option(32, "--batch-size", help="windows per step"),
    window: int = typer.Option(64, help="frames per window (multiple of 4)"),
    lr: float = typer.Option(3e-4, help="Adam learning rate"),
    seed: int = typer.Option(0, help="random seed"),
    split: Optional[str] = typer.Option(None, help="only this split (e.g. train)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train the FGD feature extractor (motion autoencoder over all 55 joints in 6D)."""
    from ..metrics.training import train_fgd_extractor

    res = train_fgd_extractor(data, out, steps=steps, batch_size=batch_size, window=window,
                              lr=lr, seed=seed, device=device, progress=progress, split=split)
    typer.echo(f"trained on {res.clips} clip(s), {res.frames} frames: loss "
               f"{res.first_loss:.4f} -> {res.final_loss:.4f} in {res.steps} steps "
               f"({res.seconds:.0f} s); wrote {res.path}")
