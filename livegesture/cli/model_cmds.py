"""`livegesture train experts|fuse|all`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .app import app, train_app
from .options import check_precision_option, experiment, precision_option

CONFIG_HELP = "preset name (demo, base) or YAML file; default: demo (or the model file's own)"
PROTOCOL_HELP = ("beat2 (the published EMAGE/MambaTalk/GestureLSM test loop), evaltools (the newer "
                 "emage_evaltools package) or strict (LiveGesture's corrected definition)")
EXTRACTOR_HELP = ("FGD feature extractor: the published AESKConv_240_100.bin, or one trained with "
                  "'livegesture train fgd-extractor' (.safetensors, not comparable)")
MEAN_VEL_HELP = "mean joint speeds (55,) .npy for BC (default: mean_vel_smplxflame_30.npy beside the data)"
SMPLX_HELP = "licensed SMPL-X model (.npz or its folder) for exact joints and face vertices"


def _show(name: str, res: dict) -> None:
    typer.echo(f"{name}: loss {res['first_loss']:.4f} -> {res['last_loss']:.4f}  "
               f"val {json.dumps({k: round(v, 4) for k, v in res['val'].items()})}  "
               f"({res['seconds']:.0f} s{', resumed' if res['resumed'] else ''})")


@train_app.command("experts")
def train_experts_cmd(
    data: Path = typer.Option(..., help="BEAT2 folder or flat folder of clips"),
    out: Path = typer.Option(..., help="model file to create or continue"),
    tokenizer: Optional[Path] = typer.Option(None, help="trained tokenizer file (needed for a new model)"),
    config: Optional[str] = typer.Option(None, help=CONFIG_HELP),
    train_ids: Optional[str] = typer.Option(None, help="comma-separated clip ids to train on"),
    val_ids: Optional[str] = typer.Option(None, help="comma-separated clip ids held out"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override, e.g. experts.steps=200"),
) -> None:
    """Train the shared audio encoder and the four region experts (stage 1 of the AR model)."""
    from ..train.ar_stage import train_model_stage

    cfg = None if out.is_file() and not (config or set_ or train_ids or val_ids) else \
        experiment(config, train_ids, val_ids, set_)
    _show("experts", train_model_stage(data, out, cfg, "experts", tokenizer, device))
    typer.echo(f"wrote {out}")


@train_app.command("fuse")
def train_fuse_cmd(
    data: Path = typer.Option(..., help="BEAT2 folder or flat folder of clips"),
    model: Path = typer.Option(..., help="model file with trained experts (updated in place)"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override a fuse.* or masking.* setting, "
                                             "e.g. fuse.steps=200 (the rest is the model file's own)"),
    half: bool = typer.Option(False, "--half", help="store the weights as float16 (half the file size)"),
) -> None:
    """Train xAR-Fuse with PILOR adapters on top of the frozen experts (stage 2)."""
    from ..train.ar_stage import train_model_stage
    from .options import parse_overrides

    _show("fuse", train_model_stage(data, model, None, "fuse", None, device, overrides=parse_overrides(set_)))
    _written(model, half)


def _written(path: Path, half: bool) -> None:
    """Re-save a finished model file with float16 weights when asked, and say it was written."""
    if half:
        from ..bundle import ModelBundle

        ModelBundle.load(path).save(path, half=True)
    typer.echo(f"wrote {path}{' (float16 weights)' if half else ''}")


@train_app.command("all")
def train_all_cmd(
    data: Path = typer.Option(..., help="BEAT2 folder or flat folder of clips"),
    out: Path = typer.Option(..., help="the self-contained model file to write"),
    config: Optional[str] = typer.Option(None, help=CONFIG_HELP),
    train_ids: Optional[str] = typer.Option(None, help="comma-separated clip ids to train on"),
    val_ids: Optional[str] = typer.Option(None, help="comma-separated clip ids held out"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="override any config value"),
    half: bool = typer.Option(False, "--half", help="store the final weights as float16 (half the file size)"),
) -> None:
    """Every stage in order (tokenizers -> experts -> fuse); rerun the same command to resume."""
    from ..train.pipeline import train_all

    res = train_all(data, out, experiment(config, train_ids, val_ids, set_), device)
    for k in ("tokenizer_stage1", "tokenizer_stage2", "tokenizer_stage3"):
        for r, info in res.get(k, {}).get("regions", {}).items():
            typer.echo(f"{k} {r}: {info['seconds']:.0f} s")
    for k in ("experts", "fuse"):
        _show(k, res[k])
    _written(out, half)


@app.command("evaluate")
def evaluate_cmd(
    data: Path = typer.Option(..., help="BEAT2 folder or flat folder of clips"),
    model: Optional[Path] = typer.Option(None, help="model file (default: the bundled demo model)"),
    split: Optional[str] = typer.Option(None, help="split to evaluate (default: test when the folder has a CSV)"),
    ids: Optional[str] = typer.Option(None, help="comma-separated clip ids (default: the held-out clips)"),
    seed: int = typer.Option(0, help="sampling seed"),
    protocol: str = typer.Option("beat2", help=PROTOCOL_HELP),
    extractor: Optional[Path] = typer.Option(None, help=EXTRACTOR_HELP),
    mean_vel: Optional[Path] = typer.Option(None, "--mean-vel", help=MEAN_VEL_HELP),
    smplx_model: Optional[Path] = typer.Option(None, "--smplx-model", help=SMPLX_HELP),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="write every generated clip here as <id>.npz "
                                           "(BEAT2 layout: the frames that were scored)"),
    guidance: Optional[float] = typer.Option(None, help="classifier-free guidance scale (default: config)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    precision: str = precision_option(),
) -> None:
    """Generate every clip from its audio alone and print the BEAT2 table beside the ground truth
    (default protocol: the published BEAT2 test loop)."""
    from ..evaluate import evaluate_model, format_table
    from .options import check_json_out, split_ids, write_json

    check_json_out(json_out)
    check_precision_option(precision)
    res = evaluate_model(model, data, split, split_ids(ids) or None, seed, extractor, guidance, protocol,
                         smplx_model, mean_vel, out_dir, progress, precision=precision)
    typer.echo(format_table(res))
    if res["out_dir"]:
        typer.echo(f"wrote {len(res['clips'])} generated clip(s) to {res['out_dir']}")
    if json_out:
        write_json(json_out, res)
