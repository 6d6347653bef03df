"""Metric commands: ground-truth evaluation and training the FGD feature extractor."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, train_app
from .model_cmds import MEAN_VEL_HELP, PROTOCOL_HELP, SMPLX_HELP


@app.command("evaluate-gt")
def evaluate_gt(
    data: Path = typer.Option(..., "--data",
                              help="BEAT2 folder or a folder of <id>.npz/.wav clips"),
    split: Optional[str] = typer.Option(None, help="only this split (needs train_test_split.csv)"),
    ids: Optional[str] = typer.Option(None, help="comma-separated clip ids"),
    protocol: str = typer.Option("beat2", help=PROTOCOL_HELP),
    smplx_model: Optional[Path] = typer.Option(None, "--smplx-model", help=SMPLX_HELP),
    mean_vel: Optional[Path] = typer.Option(None, "--mean-vel", help=MEAN_VEL_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results here"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """BC and L1div of the real motion of a data folder (default protocol: the published BEAT2 test loop)."""
    from ..metrics.evaluate import evaluate_ground_truth, format_table
    from .options import check_json_out, split_ids, write_json

    check_json_out(json_out)
    r = evaluate_ground_truth(data, split=split, ids=split_ids(ids) or None, protocol=protocol,
                              smplx_model=smplx_model, mean_vel=mean_vel, progress=progress)
    typer.echo(format_table(r))
    if json_out is not None:
        write_json(json_out, r)


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
