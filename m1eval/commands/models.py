"""``m1eval models``: the model presets and the paper settings each one carries."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from m1eval.models import PRESETS

console = Console()


def list_models() -> None:
    """Table of model presets: hub id, engine, sampling defaults and prompt instruction."""
    # The instruction is long, so it gets a line of its own under each preset: a column of
    # its own would squeeze the numbers into one character per line on an 80-column terminal.
    table = Table(title="m1eval model presets (any hub id or local folder also works with --engine)", show_lines=True)
    table.add_column("preset", no_wrap=True)
    table.add_column("hub id / instruction", overflow="fold")
    for column in ("engine", "T", "top_p", "max tokens"):
        table.add_column(column, no_wrap=True, justify="right" if column != "engine" else "left")
    for preset in PRESETS.values():
        table.add_row(
            preset.name,
            f"{preset.hub_id}\n[dim]{preset.suffix}[/dim]",
            preset.engine,
            f"{preset.temperature:g}",
            f"{preset.top_p:g}",
            str(preset.max_tokens),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(list_models)
