"""``m1eval models``: the model presets and the paper settings each one carries."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from m1eval.models.presets import PRESETS, eos_setting
from m1eval.models.prompts import JOINS
from m1eval.tasks.loader import list_tasks

console = Console()


def _protocol_table() -> Table:
    """One row per (preset, task): the budget and user turn a run of that pair gets by default."""
    table = Table(title="per-task prompt protocol (what `m1eval run --model P --task T` uses)")
    for column in ("preset", "task", "max tokens", "join", "user turn", "eos", "source"):
        table.add_column(column, no_wrap=column in ("preset", "task", "max tokens", "join"),
                         justify="right" if column == "max tokens" else "left")  # fmt: skip
    for preset in PRESETS.values():
        eos = eos_setting(preset.engine_options)
        # a preset without per-task settings poses every task alike: one row says so
        for task in list_tasks() if preset.tasks else ["(every task)"]:
            protocol = preset.protocol(task)
            table.add_row(preset.name, task, str(protocol.max_tokens), protocol.join,
                          escape(repr(JOINS[protocol.join])), eos, protocol.source)  # fmt: skip
    return table


def list_models() -> None:
    """Table of model presets (hub id, engine, sampling, instruction), then each preset's per-task protocol."""
    # The instruction is long, so it gets a line of its own under each preset: a column of
    # its own would squeeze the numbers into one character per line on an 80-column terminal.
    table = Table(title="m1eval model presets (any hub id or local folder also works with --engine)", show_lines=True)
    table.add_column("preset", no_wrap=True)
    table.add_column("hub id / instruction", overflow="fold")
    for column in ("engine", "T", "top_p", "max tokens"):
        table.add_column(column, no_wrap=True, justify="right" if column != "engine" else "left")
    for preset in PRESETS.values():
        budgets = sorted({preset.protocol(task).max_tokens for task in list_tasks()})
        table.add_row(
            preset.name,
            f"{preset.hub_id}\n[dim]{escape(preset.suffix)}[/dim]",
            preset.engine,
            f"{preset.temperature:g}",
            f"{preset.top_p:g}",
            "/".join(str(b) for b in budgets),
        )
    console.print(table)
    console.print(_protocol_table())


def register(app: typer.Typer) -> None:
    app.command("models")(list_models)
