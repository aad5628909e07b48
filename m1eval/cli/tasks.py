"""``m1eval tasks`` and ``m1eval tasks show NAME``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from m1eval import hub as hub_lib
from m1eval.cli.common import AllowUnpinnedOption, DataDirOption, error_line
from m1eval.tasks import loader as task_lib

tasks_app = typer.Typer(help="List benchmarks and show their problems.", no_args_is_help=False)
console = Console()


@tasks_app.callback(invoke_without_command=True)
def list_tasks(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    """Table of benchmarks: rows, source and whether the pinned hash verifies."""
    if ctx.invoked_subcommand is not None:
        return
    folder = task_lib.resolve_data_dir(data_dir)
    try:
        names = task_lib.list_tasks()
        specs = [task_lib.load_spec(name) for name in names]
    except task_lib.TaskError as exc:
        error_line(console, str(exc))
        raise typer.Exit(2) from None
    offline = None if folder else hub_lib.offline_reason()
    table = Table(title="m1eval tasks")
    for column in ("name", "rows", "expected", "format", "source", "pinned hash"):
        table.add_column(column)
    failures = 0
    for spec in specs:
        name = spec.name
        source = str(folder / name / task_lib.LOCAL_FILE) if folder else f"hub:{spec.hub.id}"
        try:
            problems = task_lib.load_local(spec, folder) if folder else task_lib.load_hub(spec)
        except task_lib.TaskError as exc:
            failures += 1
            # Offline, every row would repeat the same hint: the row says "not cached", the hint comes once below.
            cell = "not in the local cache" if offline else str(exc)
            table.add_row(name, "-", str(spec.expected_rows), spec.answer_format, source, f"[red]unavailable: {cell}")
            continue
        ok, actual = task_lib.verify_pin(spec, problems)
        verdict = "[green]verified" if ok else f"[red]MISMATCH (got {actual[:12]}…)"
        failures += not ok
        table.add_row(name, str(len(problems)), str(spec.expected_rows), spec.answer_format, source, verdict)
    console.print(table)
    if offline and failures:
        error_line(console, f"{offline}; {hub_lib.DATA_HINT}")
    if failures:
        raise typer.Exit(1)


@tasks_app.command("show")
def show_task(
    name: Annotated[str, typer.Argument(help="Task name, e.g. aime25.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many problems to show.")] = 5,
    data_dir: DataDirOption = None,
    allow_unpinned: AllowUnpinnedOption = False,
) -> None:
    """Show the first problems of a task with their gold answers."""
    try:
        problems = task_lib.load_task(name, data_dir, allow_unpinned=allow_unpinned)
    except task_lib.TaskError as exc:
        error_line(console, str(exc))
        raise typer.Exit(2) from None
    table = Table(title=f"{name}: {len(problems)} problems (showing {min(limit, len(problems))})", show_lines=True)
    table.add_column("id", no_wrap=True)
    table.add_column("format")
    table.add_column("question", overflow="fold")
    table.add_column("answers", overflow="fold")
    for problem in problems[:limit]:
        question = problem.question if len(problem.question) < 600 else problem.question[:600] + " …"
        table.add_row(problem.id, problem.answer_format, question, " | ".join(problem.answers))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
