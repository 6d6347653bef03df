"""`livegesture train tokenizer` and `livegesture report tokenizer`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .app import report_app, train_app
from .options import experiment, split_ids

CONFIG_HELP = "preset name (demo, base) or YAML file; default: demo"


@train_app.command("tokenizer")
def train_tokenizer_cmd(
    data: Path = typer.Option(..., help="BEAT2 folder or flat folder of clips"),
    out: Path = typer.Option(Path("tokenizer.safetensors"), help="tokenizer file to write/extend"),
    region: str = typer.Option("all", help="upper | hands | lower | face | all"),
    stage: int = typer.Option(1, min=1, max=3, help="1: autoencoder, 2: codebook, 3: decoder fine-tuned on tokens"),
    config: Optional[str] = typer.Option(None, help=CONFIG_HELP),
    train_ids: Optional[str] = typer.Option(None, help="comma-separated clip ids to train on"),
    val_ids: Optional[str] = typer.Option(None, help="comma-separated clip ids held out"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda (default: config)"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override, e.g. tokenizer_stage1.steps=200"),
) -> None:
    """Train stage 1, 2 or 3 of the SVQ tokenizers; rerun the same command to resume a killed run."""
    from ..train.tokenizer_stage import train_tokenizer

    cfg = experiment(config, train_ids, val_ids, set_)
    res = train_tokenizer(data, out, cfg, region=region, stage=stage, device=device)
    for r, info in res["regions"].items():
        typer.echo(f"{r:6s} stage {stage}: loss {info['first_loss']:.4f} -> {info['last_loss']:.4f}"
                   f"  val {json.dumps({k: round(v, 4) for k, v in info['val'].items()})}"
                   f"  ({info['seconds']:.0f} s{', resumed' if info['resumed'] else ''})")
    typer.echo(f"wrote {out}")


@report_app.command("tokenizer")
def report_tokenizer_cmd(
    model: Optional[Path] = typer.Option(None, help="tokenizer file or a full model file (default: the bundled "
                                                "demo model)"),
    data: Path = typer.Option(..., help="folder with the clips to evaluate"),
    ids: Optional[str] = typer.Option(None, help="comma-separated ids (default: the clips not used in training)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
) -> None:
    """Reconstruction error of stage 1 and stage 2 per region on held-out clips, vs the mean pose."""
    from ..tokenizer.report import format_report, report_tokenizer

    if model is None:
        from ..assets import demo_model_path

        model = demo_model_path()
    rep = report_tokenizer(model, data, ids=split_ids(ids) or None)
    typer.echo(format_report(rep))
    if json_out:
        json_out.write_text(json.dumps(rep, indent=2))
