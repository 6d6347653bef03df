"""The ``livegesture`` command. Heavy imports happen inside commands so ``--help`` is fast."""

from __future__ import annotations

import sys

from ..errors import LiveGestureError
from .app import app, report_app, train_app
from . import bench_cmd, data_cmds, generate_cmd, model_cmds, tokenizer_cmds  # noqa: F401  (registers commands)
from . import metrics_cmds  # noqa: F401  (registers commands)
from . import live_cmd, serve_cmds  # noqa: F401  (registers commands)


def main() -> None:
    """Entry point: expected user errors print one line, no traceback, exit code 2."""
    try:
        app()
    except LiveGestureError as exc:
        print(f"livegesture: error: {exc}", file=sys.stderr)
        sys.exit(2)


__all__ = ["app", "main", "report_app", "train_app"]
