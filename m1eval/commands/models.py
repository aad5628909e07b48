"""``m1eval models``: the model presets and the paper settings each one carries."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from m1eval.models import PRESETS

console = Console()


def list_models() -> None:
    """Table of model presets: hub id, engine, sampling defaults and prompt instruction."""
    table = Table(title="m1eval model presets (any hub id or local folder also works with --engine)")
    for column in ("preset", "hub id", "engine", "temperature", "top_p", "max new tokens", "instruction"):
        table.add_column(column, overflow="fold", no_wrap=column in ("preset", "hub id"))
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.hub_id, preset.engine, f"{preset.temperature:g}", f"{preset.top_p:g}",
                      str(preset.max_tokens), preset.suffix)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(list_models)
