"""``m1eval budget``: accuracy against wall-clock time and against maximum generation length."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

# Piped output (files, CI logs) is not cut to 80 columns: these tables are wide.
console = Console(width=None if sys.stdout.isatty() else 140)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def load_inputs(runs: list[Path], profiles: list[Path]):
    """Run folders (each once, however often it is named) and profiles, with errors that name the bad path."""
    from m1eval.profile import ProfileError, ThroughputProfile
    from m1eval.rundata import load_run
    from m1eval.store import StoreError, find_runs

    try:
        folders = list({folder.resolve(): folder for folder in find_runs(runs)}.values()) if runs else []
        data = [load_run(folder) for folder in folders]
        profs = [ThroughputProfile.load(p) for p in profiles]
    except (StoreError, ProfileError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    for run in data:
        for warning in run.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
    return data, profs


def _curve_table(task: str, curve, metric: str, extra_ks: set[int]) -> Table:
    """The run's curve at k = 1, 2, 4, ..., n and at every k a verdict used (all k are in the CSV/JSON)."""
    from m1eval.metrics import powers_of_two
    from m1eval.plots import nice_seconds

    table = Table(title=f"{task} · {curve.label}: {metric}@k against time ({curve.clock.source}, "
                        f"{curve.clock.tokens_per_second:,.1f} tok/s, {curve.pricing}, {len(curve.values)} problems)")
    for column in ("k", "time for k samples of every problem", f"{metric}@k %", "95% CI"):
        table.add_column(column, justify="right")
    shown = set(powers_of_two(curve.ks[-1])) | extra_ks
    for k, s, a, lo, hi in zip(curve.ks, curve.seconds, curve.accuracy, curve.low, curve.high):
        if k in shown:
            table.add_row(str(k), nice_seconds(s), _pct(a), f"[{_pct(lo)}, {_pct(hi)}]")
    return table


def _verdict_table(result, metric: str) -> Table:
    from m1eval.plots import nice_seconds

    table = Table(title=f"{result.task}: most accurate run within each time budget ({metric}@k, "
                        f"{len(result.coverage.shared)} problems)")
    table.add_column("budget", justify="right")
    for curve in result.curves:
        table.add_column(f"{curve.label} k: %", justify="right")
    for column in ("winner", "lead, pts [95% CI]", "p"):
        table.add_column(column, justify="right")
    for v in result.verdicts:
        cells = [f"{m.k}: {_pct(m.accuracy)}" + ("*" if m.saturated else "") if m.k else "none fits" for m in v.models]
        winner = v.winner or "tie: " + " = ".join(v.leaders)
        table.add_row(nice_seconds(v.budget_seconds), *cells, winner,
                      f"{_pct(v.difference)} [{_pct(v.diff_low)}, {_pct(v.diff_high)}]", f"{v.p_value:.2g}")
    return table


def _print_leaders(result) -> None:
    from m1eval.budget_tasks import leader_lines
    from m1eval.plots import nice_seconds

    for line in leader_lines(result, nice_seconds):
        console.print(line)


def budget(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or folders containing runs).")],
    profile: Annotated[list[Path], typer.Option("--profile", "-p", help="Throughput profile JSON from `m1eval bench`; repeat.")] = [],  # noqa: B006
    clock: Annotated[str, typer.Option("--clock", help="auto (profile if one matches, else the run's batches), profile or batches.")] = "auto",
    batch_size: Annotated[float | None, typer.Option("--batch-size", help="Operating batch size read from the profile (default: its peak).")] = None,
    tokens_per_sample: Annotated[
        float | None,
        typer.Option("--tokens-per-sample", min=1, help="Price every sample at N tokens (the M1 paper: 8192 at peak throughput) "
                                                       "instead of each run's mean completion length."),
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="maj (majority vote) or pass (pass@k).")] = "maj",
    length_aware: Annotated[
        bool, typer.Option("--length-aware/--no-length-aware", help="Rescale profile throughput to the run's mean completion length (length sweep).")
    ] = False,
    budgets: Annotated[list[float] | None, typer.Option("--budget", help="Time budget in seconds to compare at; repeat (default: 6 log-spaced).")] = None,
    sequential: Annotated[bool, typer.Option("--sequential/--no-sequential", help="Also grade completions cut at L tokens.")] = False,
    lengths: Annotated[str | None, typer.Option("--lengths", help="Token budgets L for --sequential, e.g. 1024,2048,4096.")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples per interval.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write budget_curves.csv, budget_verdicts.csv, length_curves.csv and all of it as budget.json here."),
    ] = None,
) -> None:
    """Which run is more accurate for the same wall-clock time (and token budget), with intervals."""
    from functools import partial

    from m1eval.budget_tasks import analyse_task, by_task, run_labels, task_curves, write_budget_tables
    from m1eval.commands.bench import parse_int_list
    from m1eval.commands.common import check_output_dir
    from m1eval.curves import METRICS as CURVE_METRICS
    from m1eval.curves import CurveError
    from m1eval.progress import make_progress

    if metric not in CURVE_METRICS:
        raise typer.BadParameter(f"--metric must be {' or '.join(sorted(CURVE_METRICS))}, got {metric!r}")
    bad = [b for b in budgets or [] if not (b > 0 and math.isfinite(b))]
    problem = (f"--batch-size must be positive, got {batch_size:g}" if batch_size is not None and not batch_size > 0
               else f"--budget must be a positive number of seconds, got {bad[0]:g}" if bad else None)
    if problem:
        console.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(2)
    check_output_dir(out, "--out")
    data, profs = load_inputs(runs, profile)
    label_of = dict(zip(map(id, data), run_labels(data)))
    results, length_frames = [], []
    failed = None
    try:
        for task, group in by_task(data).items():
            with make_progress("steps", transient=True) as progress:
                bar = progress.add_task(f"{task}: price runs, compare at budgets", total=len(group) + (len(budgets or []) or 6))
                step = partial(progress.advance, bar)
                prepared = task_curves(group, profs, metric=metric, source=clock, batch_size=batch_size, length_aware=length_aware,
                                       tokens_per_sample=tokens_per_sample, resamples=resamples, seed=seed,
                                       labels=[label_of[id(run)] for run in group], on_step=step)
                result = analyse_task(prepared, budgets, resamples=resamples, seed=seed, on_step=step)
            for warning in prepared.warnings:
                console.print(f"[yellow]warning:[/yellow] {warning}")
            results.append(result)
            for curve in result.curves:
                used = {m.k for v in result.verdicts for m in v.models if m.label == curve.label and m.k}
                console.print(_curve_table(result.task, curve, metric, used))
            if not result.verdicts:
                continue
            console.print(_verdict_table(result, metric))
            if any(m.saturated for v in result.verdicts for m in v.models):
                console.print("* the run has no more samples: accuracy held at its largest k")
            for note in result.notes:
                console.print(f"note: {note}")
            _print_leaders(result)
        if sequential:
            from m1eval.budget import match_profile
            from m1eval.budget_sequential import sequential_curve
            from m1eval.plots import nice_seconds

            grid = parse_int_list(lengths, "--lengths")
            for run in data:
                with make_progress("lengths", transient=True) as progress:
                    bar = progress.add_task(f"grade cut texts of {run.model}", total=None)
                    curve = sequential_curve(run, lengths=grid, profile=match_profile(run, profs), resamples=resamples, seed=seed,
                                             label=label_of[id(run)],
                                             on_step=lambda done, total, bar=bar: progress.update(bar, completed=done, total=total))
                table = Table(title=f"{run.task} · {curve.label}: accuracy with completions cut at L tokens")
                for column in ("L (tokens)", "pass@1 %", "95% CI", "no answer %", "decode time"):
                    table.add_column(column, justify="right")
                for i, L in enumerate(curve.lengths):
                    secs = nice_seconds(curve.seconds[i]) if curve.seconds is not None else "-"
                    table.add_row(str(L), _pct(curve.accuracy[i]), f"[{_pct(curve.low[i])}, {_pct(curve.high[i])}]",
                                  _pct(curve.no_answer[i]), secs)
                console.print(table)
                length_frames.append(curve.to_frame())
    except CurveError as exc:  # BudgetError is one
        failed = exc
    if out is not None and (results or length_frames):
        settings = {"metric": metric, "clock": clock, "batch_size": batch_size, "tokens_per_sample": tokens_per_sample,
                    "length_aware": length_aware, "resamples": resamples, "seed": seed}
        write_budget_tables(out, results, settings, length_frames)
        console.print(f"tables written to {out}" + (" (the tasks finished before the error)" if failed else ""))
    if failed is not None:
        console.print(f"[red]error:[/red] {failed}")
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("budget")(budget)
