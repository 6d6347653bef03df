"""Data commands: synthetic BEAT2-format data."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command("synth")
def synth(out: Path = typer.Argument(..., help="folder to write a BEAT2-layout data set into"),
          clips: int = typer.Option(4, help="number of clips"),
          seconds: float = typer.Option(20.0, help="length of each clip in seconds"),
          seed: int = typer.Option(0, help="random seed")) -> None:
    """Write synthetic BEAT2-format clips (motion npz, speech-like wav, TextGrid, split CSV)."""
    from ..data.synthetic import write_synthetic_beat2

    paths = write_synthetic_beat2(out, n_clips=clips, seconds=seconds, seed=seed)
    typer.echo(f"wrote {len(paths)} synthetic clips to {out}")
