"""``m1eval plot``: paper figures from run folders and throughput profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID

from m1eval.cli.common import (
    BatchSizeOption,
    ClockOption,
    FigureFormatOption,
    FigureSizeOption,
    LengthAwareOption,
    LengthsOption,
    LevelOption,
    MetricOption,
    OldSignFlipsOption,
    ProfileOption,
    SeedOption,
    SignFlipsOption,
    TokensPerSampleOption,
    error_line,
    sign_flips_of,
)

console = Console()


def plot(
    runs: Annotated[list[Path] | None, typer.Argument(help="Run folders, or folders containing run folders.")] = None,
    figure: Annotated[
        list[str], typer.Option("--figure", help="passk, majk, budget, length, throughput or all; repeat for several.")
    ] = ["all"],  # noqa: B006
    profile: ProfileOption = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the figure files.")] = Path("figures"),
    fmt: FigureFormatOption = "png",
    size: FigureSizeOption = "double",
    clock: ClockOption = "auto",
    batch_size: BatchSizeOption = None,
    metric: MetricOption = "maj",
    length_aware: LengthAwareOption = False,
    tokens_per_sample: TokensPerSampleOption = None,
    lengths: LengthsOption = None,
    sign_flips: SignFlipsOption = 1000,
    old_sign_flips: OldSignFlipsOption = None,
    seed: SeedOption = 0,
    level: LevelOption = 0.95,
) -> None:
    """pass@k / maj@k vs k, accuracy vs time budget and vs max tokens, throughput vs batch and length.

    Runs of one task are drawn on the problems all of them scored, in every figure (the
    titles say how many); how the runs differ (budget, prompt, grading, hardware) is noted
    under the figures."""
    sign_flips = sign_flips_of(sign_flips, old_sign_flips)
    from m1eval.analysis.budget import tables as bt
    from m1eval.analysis.comparable import difference_lines, run_differences
    from m1eval.analysis.curves import CurveError, metric_curve
    from m1eval.analysis.problemsets import shared_by_task
    from m1eval.cli.common import check_output_dir, parse_int_list
    from m1eval.cli.progress import make_progress
    from m1eval.figures import plots
    from m1eval.rundir.store import StoreError
    from m1eval.throughput.profile import ProfileError

    wanted = list(plots.FIGURES) if "all" in figure else list(dict.fromkeys(figure))
    unknown = [f for f in wanted if f not in plots.FIGURES]
    if unknown:
        raise typer.BadParameter(f"--figure {unknown[0]!r}: choose from {', '.join(plots.FIGURES)} or all")
    if fmt not in ("png", "pdf", "svg"):
        raise typer.BadParameter(f"--format must be png, pdf or svg, got {fmt!r}")
    if size not in plots.SIZES:
        raise typer.BadParameter(f"--size must be {' or '.join(plots.SIZES)}, got {size!r}")
    if batch_size is not None and not batch_size > 0:
        raise typer.BadParameter(f"--batch-size must be positive, got {batch_size:g}")
    check_output_dir(out, "--out")
    try:
        inputs = bt.load_inputs(list(runs or []), profile or [])
    except (StoreError, ProfileError) as exc:
        error_line(console, str(exc))
        raise typer.Exit(2) from None
    for warning in inputs.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    profs = inputs.profiles
    try:  # one problem set per task for every figure: the problems all of its runs scored
        data, _coverage, notes = shared_by_task(inputs.runs, inputs.labels)
    except CurveError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    tasks = inputs.groups()
    many = len(tasks) > 1

    def task_notes(task: str, differences) -> list[str]:  # noqa: ANN001 - comparable.Difference list
        return [f"{task}: {line}" if many else line for line in difference_lines(differences)]

    run_notes = [line for task, group, labels in tasks for line in task_notes(task, run_differences(group, labels))]
    for note in [*notes, *run_notes]:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    if "all" in figure:  # only what the inputs allow
        wanted = [f for f in wanted if (f == "throughput" and profs) or (f != "throughput" and data)]
    needs_runs = [f for f in wanted if f != "throughput"]
    if needs_runs and not data:
        raise typer.BadParameter(f"--figure {needs_runs[0]} needs run folders")
    if "throughput" in wanted and not profs:
        raise typer.BadParameter("--figure throughput needs --profile files from `m1eval bench`")
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
    written = []
    try:
        for name in wanted:
            if name in plots.METRIC_FIGURES:
                fig = plots.figure_metric(
                    [
                        metric_curve(
                            run, plots.METRIC_FIGURES[name], sign_flips=sign_flips, seed=seed, level=level, label=label
                        )
                        for run, label in zip(data, inputs.labels)
                    ],
                    level=level,
                    size=size,
                    notes=[*notes, *run_notes],
                )
            elif name == "budget":
                prepared = [bt.priced_curves(group, profs, settings, labels=labels) for _, group, labels in tasks]
                clock_notes = [line for t in prepared for line in task_notes(t.task, t.differences)]
                for message in [*(w for t in prepared for w in t.warnings), *clock_notes]:
                    if message not in run_notes:
                        console.print(f"[yellow]note:[/yellow] {escape(message)}")
                fig = plots.figure_budget(
                    [curve for t in prepared for curve in t.curves],
                    size=size,
                    notes=[*notes, *clock_notes],
                    level=level,
                )
            elif name == "length":
                grid = parse_int_list(lengths, "--lengths")
                length_curves = []
                for run, label in zip(data, inputs.labels):
                    with make_progress("lengths", transient=True) as progress:
                        bar = progress.add_task(f"grade cut texts of {run.model}", total=None)

                        def on_step(done: int, total: int, bar: TaskID = bar) -> None:
                            progress.update(bar, completed=done, total=total)

                        length_curves.append(bt.length_curve(run, profs, settings, grid, label=label, on_step=on_step))
                fig = plots.figure_length(length_curves, size=size, notes=[*notes, *run_notes])
            else:
                fig = plots.figure_throughput(profs, size=size)
            written.append(plots.save(fig, out, name, fmt))
    except CurveError as exc:  # BudgetError is one
        error_line(console, str(exc))
        raise typer.Exit(2) from None
    for path in written:
        console.print(f"figure written: {path}")


def register(app: typer.Typer) -> None:
    app.command("plot")(plot)
