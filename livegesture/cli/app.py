"""The Typer application objects; command modules register themselves on these."""

from __future__ import annotations

import typer

app = typer.Typer(name="livegesture", no_args_is_help=True, pretty_exceptions_enable=False,
                  add_completion=False,
                  help="LiveGesture: live speech to full-body SMPL-X gestures with zero look-ahead.")
train_app = typer.Typer(no_args_is_help=True, help="Train a model component.")
report_app = typer.Typer(no_args_is_help=True, help="Report on a trained component.")
app.add_typer(train_app, name="train")
app.add_typer(report_app, name="report")
