"""Option parsing shared by commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def split_ids(text: str | None) -> tuple[str, ...]:
    """'a,b , c' -> ('a', 'b', 'c')."""
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def experiment(config: str | None, train_ids: str | None = None, val_ids: str | None = None,
               overrides: list[str] | None = None):
    """Load a preset or YAML file and apply --train-ids / --val-ids / --set key=value overrides."""
    from ..train.config import load_experiment

    ov: dict[str, Any] = {}
    if train_ids:
        ov["data.train_ids"] = list(split_ids(train_ids))
    if val_ids:
        ov["data.val_ids"] = list(split_ids(val_ids))
    ov.update(parse_overrides(overrides))
    return load_experiment(config if config is None or not Path(config).suffix else Path(config), ov)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """--set key=value items -> {dotted key: YAML value}."""
    import yaml

    from ..errors import ConfigError

    ov: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        ov[k.strip()] = yaml.safe_load(v)
    return ov


def check_json_out(path: Path | None) -> None:
    """Fail before long work when a --json path cannot be written."""
    if path is None:
        return
    from ..errors import DataError

    parent = path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--json {path}: cannot create {parent} ({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK) or path.is_dir():
        raise DataError(f"--json {path}: cannot write there")


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically and say so."""
    import json

    import typer

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    typer.echo(f"wrote {path}")


PRECISION_HELP = ("matrix products of the model step and decoders: float32 (exact, default) or int8 (weight-only int8: "
                  "faster on a CPU, close to float32 but not equal; docs/design.md §6 states its measured cost)")


def precision_option() -> Any:
    """The ``--precision`` option shared by the commands that run the model."""
    import typer

    return typer.Option("float32", help=PRECISION_HELP)


COMPILE_HELP = ("run the lone stream's audio encoder, model step and decoder as compiled programs (torch.compile and "
                "the streaming kernels: about 2x less compute on a CPU, needs a C++ compiler, about a minute to "
                "compile the first time, cached after; close to eager float32, not bit-equal)")


def compile_option() -> Any:
    """The ``--compile`` option shared by the commands that run a one-row stream."""
    import typer

    return typer.Option(False, "--compile", help=COMPILE_HELP)


def check_compile_option(compile: bool) -> bool:
    """``--compile`` checked before any work: a machine that cannot compile is told so in one line
    (exit code 2), not after the audio was read and the model loaded."""
    from ..engine.compiled import compile_available
    from ..errors import ConfigError

    if compile:
        why = compile_available()
        if why is not None:
            raise ConfigError(f"--compile: {why}")
    return compile


def check_precision_option(precision: str) -> str:
    """``--precision`` checked before any work (one line, exit code 2, on a wrong value)."""
    from ..errors import ConfigError
    from ..model.quant import PRECISIONS

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision
