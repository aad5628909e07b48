"""The ``m1eval`` app: the verbs in the order of ``m1eval --help``, and the version flag."""

from __future__ import annotations

from typing import Annotated

import typer
import typer.core

from m1eval import __version__
from m1eval.cli import bench, budget, engines, grade, models, plot, report, run, tasks


def _hide_flag_metavar() -> None:
    """Typer 0.29's rich help prints ``<bool>`` after every flag (``--help <bool>``), which reads as
    if the flag took a value. Flags take none, so they get no type column; other options keep theirs."""
    option_class = typer.core.TyperOption
    if getattr(option_class.display_type_rich, "_m1eval_flags", False):
        return
    original = option_class.display_type_rich

    def display_type_rich(self, ctx):  # typer's signature
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._m1eval_flags = True  # type: ignore[attr-defined]
    setattr(option_class, "display_type_rich", display_type_rich)  # noqa: B010 - patching typer's method


_hide_flag_metavar()

app = typer.Typer(
    name="m1eval",
    help="Test-time scaling evaluation of math reasoning models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each verb lives in m1eval/cli/<name>.py and exposes register(app); the order here is the
# order of `m1eval --help`.
VERBS = (tasks, models, engines, run, grade, report, bench, budget, plot)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"m1eval {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """m1eval: pass@k, maj@k and accuracy under a clock, from stored runs."""


for verb in VERBS:
    verb.register(app)


def main() -> None:
    app()
