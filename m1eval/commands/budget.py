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
    """Run folders and profiles, with errors that name the bad path."""
    from m1eval.profile import ProfileError, ThroughputProfile
    from m1eval.rundata import load_run
    from m1eval.store import StoreError, find_runs

    try:
        folders = find_runs(runs) if runs else []
        data = [load_run(folder) for folder in folders]
        profs = [ThroughputProfile.load(p) for p in profiles]
    except (StoreError, ProfileError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    for run in data:
        for warning in run.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
    return data, profs


def by_task(runs):
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.task, []).append(run)
    return groups


def budget(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or folders containing runs).")],
    profile: Annotated[list[Path], typer.Option("--profile", "-p", help="Throughput profile JSON from `m1eval bench`; repeat.")] = [],  # noqa: B006
    clock: Annotated[str, typer.Option("--clock", help="auto (profile if one matches, else the run's batches), profile or batches.")] = "auto",
    batch_size: Annotated[float | None, typer.Option("--batch-size", help="Operating batch size read from the profile (default: its peak).")] = None,
    metric: Annotated[str, typer.Option("--metric", help="maj (majority vote) or pass (pass@k).")] = "maj",
    length_aware: Annotated[
        bool, typer.Option("--length-aware/--no-length-aware", help="Rescale profile throughput to the run's mean completion length (length sweep).")
    ] = False,
    budgets: Annotated[list[float] | None, typer.Option("--budget", help="Time budget in seconds to compare at; repeat (default: 6 log-spaced).")] = None,
    sequential: Annotated[bool, typer.Option("--sequential/--no-sequential", help="Also grade completions cut at L tokens.")] = False,
    lengths: Annotated[str | None, typer.Option("--lengths", help="Token budgets L for --sequential, e.g. 1024,2048,4096.")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples per interval.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Also write budget_curves.csv, budget_verdicts.csv, length_curves.csv here.")] = None,
) -> None:
    """Which model is more accurate for the same wall-clock time (and token budget), with intervals."""
    import pandas as pd

    from m1eval.budget import BudgetError, clock_for, compare_at_budget, crossovers, default_budgets, parallel_curve
    from m1eval.commands.bench import parse_int_list
    from m1eval.commands.common import check_output_dir
    from m1eval.plots import nice_seconds

    if metric not in ("maj", "pass"):
        raise typer.BadParameter(f"--metric must be maj or pass, got {metric!r}")
    if batch_size is not None and not batch_size > 0:
        raise typer.BadParameter(f"--batch-size must be positive, got {batch_size:g}")
    bad = [b for b in budgets or [] if not (b > 0 and math.isfinite(b))]
    if bad:
        raise typer.BadParameter(f"--budget must be a positive number of seconds, got {bad[0]:g}")
    check_output_dir(out, "--out")
    data, profs = load_inputs(runs, profile)
    curve_frames, verdict_rows, length_frames = [], [], []
    try:
        for task, group in by_task(data).items():
            curves = [
                parallel_curve(run, clock_for(run, profs, batch_size=batch_size, source=clock, length_aware=length_aware), metric, resamples=resamples, seed=seed)
                for run in group
            ]
            for curve in curves:
                table = Table(title=f"{task} · {curve.label}: {metric}@k against time ({curve.clock.source}, "
                                    f"{curve.clock.tokens_per_second:,.1f} tok/s, {curve.tokens_per_sample:,.0f} tok/sample)")
                for column in ("k", "time for k samples of every problem", f"{metric}@k %", "95% CI"):
                    table.add_column(column, justify="right")
                for k, s, a, lo, hi in zip(curve.ks, curve.seconds, curve.accuracy, curve.low, curve.high):
                    table.add_row(str(k), nice_seconds(s), _pct(a), f"[{_pct(lo)}, {_pct(hi)}]")
                console.print(table)
                curve_frames.append(curve.to_frame())
            if len(curves) < 2:
                continue
            table = Table(title=f"{task}: most accurate model within each time budget ({metric}@k)")
            table.add_column("budget", justify="right")
            for curve in curves:
                table.add_column(f"{curve.label} k: %", justify="right")
            for column in ("winner", "lead, pts [95% CI]", "p"):
                table.add_column(column, justify="right")
            saturated = False
            for seconds in budgets or default_budgets(curves):
                v = compare_at_budget(curves, seconds, resamples=resamples, seed=seed)
                saturated = saturated or any(m.saturated for m in v.models)
                cells = [f"{m.k}: {_pct(m.accuracy)}" + ("*" if m.saturated else "") if m.k else "none fits" for m in v.models]
                table.add_row(nice_seconds(seconds), *cells, v.winner or "tie",
                              f"{_pct(v.difference)} [{_pct(v.diff_low)}, {_pct(v.diff_high)}]", f"{v.p_value:.2g}")
                verdict_rows.append({"task": task, "budget_seconds": seconds, "winner": v.winner, "difference": v.difference,
                                     "ci_low": v.diff_low, "ci_high": v.diff_high, "p_value": v.p_value,
                                     **{f"k[{m.label}]": m.k for m in v.models}, **{f"acc[{m.label}]": m.accuracy for m in v.models}})
            console.print(table)
            if saturated:
                console.print("* the run has no more samples: accuracy held at its largest k")
            if len(curves) == 2:
                flips = crossovers(curves[0], curves[1])
                for price, leader in flips:
                    console.print(f"crossover: from {nice_seconds(price)} on, {leader} is more accurate")
                if not flips:
                    console.print("no crossover: the same model leads (or ties) at every budget")
        if sequential:
            from m1eval.budget import match_profile
            from m1eval.budget_sequential import sequential_curve

            grid = parse_int_list(lengths, "--lengths")
            for run in data:
                curve = sequential_curve(run, lengths=grid, profile=match_profile(run, profs), resamples=resamples, seed=seed)
                table = Table(title=f"{run.task} · {curve.label}: accuracy with completions cut at L tokens")
                for column in ("L (tokens)", "pass@1 %", "95% CI", "no answer %", "decode time"):
                    table.add_column(column, justify="right")
                for i, L in enumerate(curve.lengths):
                    secs = nice_seconds(curve.seconds[i]) if curve.seconds is not None else "-"
                    table.add_row(str(L), _pct(curve.accuracy[i]), f"[{_pct(curve.low[i])}, {_pct(curve.high[i])}]",
                                  _pct(curve.no_answer[i]), secs)
                console.print(table)
                length_frames.append(curve.to_frame())
    except BudgetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, frames in (("budget_curves", curve_frames), ("length_curves", length_frames)):
            if frames:
                pd.concat(frames).to_csv(out / f"{name}.csv", index=False)
        if verdict_rows:
            pd.DataFrame(verdict_rows).to_csv(out / "budget_verdicts.csv", index=False)
        console.print(f"tables written to {out}")


def register(app: typer.Typer) -> None:
    app.command("budget")(budget)
