"""The Typer application objects; command modules register themselves on these.

Help is plain text in click's conventions (``Usage: livegesture generate [OPTIONS] SPEECH``, flags
without a type): recent Typer releases print required arguments as ``{speech}`` and flags as
``--help <bool>``, which reads as if they took values (tests/test_cli_help.py checks the text)."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand


class Command(TyperCommand):
    """A command whose usage line names arguments in upper case, ``[NAME]`` when optional."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name != "argument":
                continue
            name = (p.metavar or p.name or "").upper()
            name = name if p.required else f"[{name}]"
            pieces.append(name + ("..." if p.nargs != 1 else ""))
        return pieces


class App(typer.Typer):
    """Typer with plain help and :class:`Command` as every command's class."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(rich_markup_mode=None, **kwargs)

    def command(self, *args: Any, cls: type | None = None, **kwargs: Any):
        return super().command(*args, cls=cls or Command, **kwargs)


app = App(name="livegesture", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
          help="LiveGesture: live speech to full-body SMPL-X gestures with zero look-ahead.")
train_app = App(no_args_is_help=True, help="Train a model component.")
report_app = App(no_args_is_help=True, help="Report on a trained component.")
app.add_typer(train_app, name="train")
app.add_typer(report_app, name="report")
