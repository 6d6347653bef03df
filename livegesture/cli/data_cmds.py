"""Data commands: synthetic BEAT2-format data, and preparing a memory-mapped cache."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app


@app.command("synth")
def synth(out: Path = typer.Argument(..., help="folder to write a BEAT2-layout data set into"),
          clips: int = typer.Option(4, help="number of clips"),
          seconds: float = typer.Option(20.0, help="length of each clip in seconds"),
          seed: int = typer.Option(0, help="random seed"),
          long_pauses: float = typer.Option(0.0, help="share of the pauses between phrases that last "
                                                      "2.5-5 s instead of 0.8-2 s (0 to 1)")) -> None:
    """Write synthetic BEAT2-format clips (motion npz, speech-like wav, TextGrid, split CSV)."""
    from ..data.synthetic import write_synthetic_beat2
    from ..errors import ConfigError

    if not 0.0 <= long_pauses <= 1.0:
        raise ConfigError(f"--long-pauses must be between 0 and 1, got {long_pauses}")
    paths = write_synthetic_beat2(out, n_clips=clips, seconds=seconds, seed=seed, long_pauses=long_pauses)
    typer.echo(f"wrote {len(paths)} synthetic clips to {out}")


@app.command("prepare")
def prepare(data: Path = typer.Option(..., help="BEAT2 folder or flat folder of clips"),
            out: Path = typer.Option(..., help="cache folder to write, or to bring up to date"),
            workers: Optional[int] = typer.Option(None, help="worker processes (default: the CPU count)"),
            progress: bool = typer.Option(True, help="show a progress bar")) -> None:
    """Read a data folder once into a memory-mapped cache that every training and evaluation
    command takes as --data; rerun to resume or to pick up changed files."""
    from ..data.prepare import prepare_cache

    r = prepare_cache(data, out, workers=workers, progress=progress)
    typer.echo(f"{out}: {r.clips} clip(s), {r.frames / 30 / 60:.1f} min of motion "
               f"({r.kept} unchanged, {r.read} read) in {r.seconds:.1f} s")
    if r.bad:
        typer.echo(f"{len(r.bad)} bad file(s); their clips are left out:")
        for path, problem in r.bad:
            typer.echo(f"  {path}: {problem}")
