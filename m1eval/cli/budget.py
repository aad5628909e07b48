"""``m1eval budget``: accuracy against wall-clock time and against maximum generation length."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from m1eval.cli.common import (
    BatchSizeOption,
    ClockOption,
    LengthAwareOption,
    LengthsOption,
    LevelOption,
    MetricOption,
    OldSignFlipsOption,
    ProfileOption,
    RunsArgument,
    SeedOption,
    SignFlipsOption,
    TokensPerSampleOption,
    error_line,
    parse_int_list,
    sign_flips_of,
)

# Piped output (files, CI logs) is not cut to 80 columns: these tables are wide.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)


if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def _show_step(progress: Progress, bar: TaskID, done: int, total: int) -> None:
    """The length curve's progress hook: it reports its total as it learns it."""
    progress.update(bar, completed=done, total=total)


def _print_table(table, out: Console | None = None) -> None:
    """A ``m1eval.analysis.budget.tables.TextTable`` as a rich table, every column right-aligned,
    no vertical rules (a verdict table of five runs stays one line a budget at 100 columns)."""
    out = out or console
    from rich import box

    rich = Table(title=table.title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in table.columns:
        rich.add_column(column, justify="right")
    for row in table.rows:
        rich.add_row(*row)
    out.print(rich)
    for line in table.caption.splitlines():
        out.print(escape(line), highlight=False)


def budget(
    runs: RunsArgument,
    profile: ProfileOption = None,
    clock: ClockOption = "auto",
    batch_size: BatchSizeOption = None,
    tokens_per_sample: TokensPerSampleOption = None,
    metric: MetricOption = "maj",
    length_aware: LengthAwareOption = False,
    budgets: Annotated[
        list[float] | None,
        typer.Option("--budget", help="Time budget in seconds to compare at; repeat (default: 6 log-spaced)."),
    ] = None,
    sequential: Annotated[
        bool, typer.Option("--sequential/--no-sequential", help="Also grade completions cut at L tokens.")
    ] = False,
    lengths: LengthsOption = None,
    sign_flips: SignFlipsOption = 1000,
    old_sign_flips: OldSignFlipsOption = None,
    seed: SeedOption = 0,
    level: LevelOption = 0.95,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Also write budget_curves.csv, budget_verdicts.csv, length_curves.csv and all of it as budget.json here.",
        ),
    ] = None,
) -> None:
    """Which run is more accurate for the same wall-clock time (and token budget), with intervals."""
    from functools import partial

    from m1eval.analysis.budget import tables as bt
    from m1eval.analysis.budget.study import write_budget_tables
    from m1eval.analysis.comparable import difference_lines
    from m1eval.analysis.curves import METRICS as CURVE_METRICS
    from m1eval.analysis.curves import CurveError
    from m1eval.cli.common import check_output_dir
    from m1eval.cli.progress import make_progress
    from m1eval.rundir.store import StoreError
    from m1eval.throughput.profile import ProfileError

    if metric not in CURVE_METRICS:
        raise typer.BadParameter(f"--metric must be {' or '.join(sorted(CURVE_METRICS))}, got {metric!r}")
    sign_flips = sign_flips_of(sign_flips, old_sign_flips)
    if sign_flips < 100:  # the smallest p-value of n flips is 1/(n+1): fewer than 100 cannot show p < 0.01
        raise typer.BadParameter(
            f"--sign-flips: a budget verdict needs a p-value from at least 100 sign flips, got {sign_flips}"
        )
    bad = [b for b in budgets or [] if not (b > 0 and math.isfinite(b))]
    problem = (
        f"--batch-size must be positive, got {batch_size:g}"
        if batch_size is not None and not batch_size > 0
        else f"--budget must be a positive number of seconds, got {bad[0]:g}"
        if bad
        else None
    )
    if problem:
        error_line(console, str(problem))
        raise typer.Exit(2)
    check_output_dir(out, "--out")
    try:
        inputs = bt.load_inputs(runs, profile or [])
    except (StoreError, ProfileError) as exc:
        error_line(console, str(exc))
        raise typer.Exit(2) from None
    for warning in inputs.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    settings = bt.BudgetSettings(
        metric=metric,
        clock=clock,
        batch_size=batch_size,
        tokens_per_sample=tokens_per_sample,
        length_aware=length_aware,
        sign_flips=sign_flips,
        seed=seed,
        level=level,
    )
    results, length_frames = [], []
    failed = None
    try:
        for task, group, labels in inputs.groups():
            with make_progress("steps", transient=True) as progress:
                bar = progress.add_task(f"{task}: price runs, compare at budgets", total=bt.task_steps(group, budgets))
                result = bt.task_budget(
                    group, inputs.profiles, settings, budgets, labels=labels, on_step=partial(progress.advance, bar)
                )
            for warning in [*result.warnings, *difference_lines(result.differences)]:
                console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
            results.append(result)
            for curve in result.curves:
                _print_table(bt.curve_table(curve, bt.used_ks(result, curve), level=level))
            if result.verdicts:
                _print_table(bt.verdict_table(result, level=level))
                for line in bt.verdict_lines(result):
                    console.print(line)
        if sequential:
            grid = parse_int_list(lengths, "--lengths")
            for run, label in zip(inputs.runs, inputs.labels):
                with make_progress("lengths", transient=True) as progress:
                    bar = progress.add_task(f"grade cut texts of {run.model}", total=None)
                    length = bt.length_curve(
                        run, inputs.profiles, settings, grid, label=label, on_step=partial(_show_step, progress, bar)
                    )
                _print_table(bt.length_table(length, level=level))
                length_frames.append(length.to_frame())
    except CurveError as exc:  # BudgetError is one
        failed = exc
    if out is not None and (results or length_frames):
        write_budget_tables(out, results, settings.as_dict(), length_frames)
        console.print(f"tables written to {out}" + (" (the tasks finished before the error)" if failed else ""))
    if failed is not None:
        error_line(console, str(failed))
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("budget")(budget)
