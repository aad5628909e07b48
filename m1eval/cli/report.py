"""``m1eval report RUN_DIR...``: accuracy curves with intervals, and paired comparisons."""

from __future__ import annotations

import shutil
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from m1eval.cli.common import (
    LevelOption,
    OldSignFlipsOption,
    RunsArgument,
    SignFlipsOption,
    check_output_file,
    error_line,
    sign_flips_of,
)
from m1eval.cli.progress import make_progress
from m1eval.rundir.store import StoreError, find_runs

err = Console(stderr=True)


class CITarget(str, Enum):
    population = "population"
    fixed = "fixed"


class Format(str, Enum):
    table = "table"
    markdown = "markdown"
    latex = "latex"
    csv = "csv"
    json = "json"


def report(
    run_dirs: RunsArgument,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    sign_flips: SignFlipsOption = 1000,
    old_sign_flips: OldSignFlipsOption = None,
    ci_target: Annotated[
        CITarget,
        typer.Option(
            "--ci-target",
            help="What the intervals are for: new problems drawn like these (population), or new samples of these same problems "
            "(fixed: pass@k and avg@n only, so the report then shows those alone; paired comparisons stay population).",
        ),
    ] = CITarget.population,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sign flips.")] = 0,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Run to compare the others against: its folder, run id or model name (default: the first).",
        ),
    ] = None,
    every_k: Annotated[bool, typer.Option("--every-k", help="Curves at every k, not only powers of two.")] = False,
    level: LevelOption = 0.95,
    output: Annotated[
        Path | None, typer.Option("--out", "--output", help="Write the report to this file instead of stdout.")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Also every metric per group of problems, with intervals: level, subject or any meta key "
            "of the task (OlympiadBench's subject is its subfield).",
        ),
    ] = None,
    per_problem: Annotated[
        bool,
        typer.Option(
            "--per-problem",
            help="Instead: one row per run and problem (pass@1, pass@k and maj@k at the run's k, clusters, "
            "majority answer and whether it is right, no-answer and truncation shares, mean tokens); -f csv or json.",
        ),
    ] = False,
) -> None:
    """Per run: pass@1 with CI, pass@k and maj@k at k = 1, 2, 4 ..., no-answer and truncation
    rates, completion tokens; --by level gives them per group of problems. With several runs,
    each is compared with the baseline on the problems they share (paired difference,
    score-interval CI, sign-flip p-value), below the settings in which the runs differ."""
    sign_flips = sign_flips_of(sign_flips, old_sign_flips)
    from m1eval.analysis import report as report_lib  # pandas: imported when a report is made, not by every verb
    from m1eval.rundir.rundata import load_run

    check_output_file(output, "--out")
    if per_problem and by is not None:
        raise typer.BadParameter("--per-problem rows carry each problem's meta (level, subject): leave out --by")
    if per_problem and fmt not in (Format.csv, Format.json):
        raise typer.BadParameter(f"--per-problem writes -f csv or -f json, got -f {fmt.value}")
    try:
        paths = find_runs(run_dirs)
        runs = [load_run(p, with_text=False) for p in paths]
        base = _baseline_index(runs, baseline)
    except (StoreError, ValueError) as exc:
        error_line(err, str(exc))
        raise typer.Exit(2) from None
    if per_problem:
        _write(_per_problem_text(runs, fmt), output)
        return
    groups_of = {}
    if by is not None:
        from m1eval.analysis.breakdown import GroupError, problem_groups

        try:
            groups_of = {id(run): problem_groups(run, by) for run in runs}
        except GroupError as exc:
            err.print(f"[red]error:[/red] --by: {exc}")
            raise typer.Exit(2) from None

    # every registered metric the run supports (scored ones need scores); only pass@k for fixed-set intervals
    from m1eval.analysis.metrics import metric_names

    fixed = ci_target is CITarget.fixed
    per_run = lambda run: len(metric_names(scores=run.scores() is not None, fixed_set=fixed))
    steps = sum(per_run(run) * (1 + len(groups_of.get(id(run), ()))) for run in runs) + (len(runs) - 1) * 3
    with make_progress("steps", transient=True) as progress:
        task = progress.add_task("intervals", total=steps)
        advance = lambda _label: progress.advance(task)
        settings: dict[str, Any] = {
            "sign_flips": sign_flips,
            "seed": seed,
            "level": level,
            "every_k": every_k,
            "on_step": advance,
            "target": ci_target.value,
            **({"metrics": metric_names(fixed_set=True)} if fixed else {}),
        }  # one summary's settings: the whole run's and each group's alike
        try:
            summaries = []
            for run in runs:
                progress.update(task, description=f"intervals {run.label}")
                summaries.append(report_lib.summarize_run(run, **settings))
            groups = []
            if by is not None:
                from m1eval.analysis.breakdown import group_summaries

                for run in runs:
                    progress.update(task, description=f"intervals by {by} {run.label}")
                    groups += group_summaries(run, by, **settings)
            progress.update(task, description="paired comparisons")
            comparisons = (
                report_lib.compare_runs(
                    runs, baseline=base, sign_flips=sign_flips, seed=seed, level=level, on_step=advance
                )
                if len(runs) > 1
                else []
            )
        except ValueError as exc:
            error_line(err, str(exc))
            raise typer.Exit(2) from None
    from m1eval.analysis.comparable import run_differences

    differences = run_differences(runs) if len(runs) > 1 else []
    width = shutil.get_terminal_size().columns if output is None and sys.stdout.isatty() else 200
    text = report_lib.render_report(summaries, comparisons, fmt.value, differences, groups, width=width)
    _write(text, output)


def _write(text: str, output: Path | None) -> None:
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        err.print(f"report written to {output}")
    else:
        typer.echo(text, nl=False)


def _per_problem_text(runs, fmt: Format) -> str:  # noqa: ANN001 - RunData list
    """``m1eval.analysis.per_problem.per_problem_frame`` of the runs as CSV or JSON records (NaN: null)."""
    import json

    from m1eval.analysis.budget.study import run_labels
    from m1eval.analysis.per_problem import per_problem_frame, records

    frame = per_problem_frame(runs, run_labels(runs))
    if fmt is Format.csv:
        return frame.to_csv(index=False)
    return json.dumps(records(frame), indent=1, allow_nan=False) + "\n"


def _baseline_index(runs, baseline: str | None) -> int:
    if baseline is None:
        return 0
    target = Path(baseline).resolve()
    for i, run in enumerate(runs):
        if baseline in (run.run_id, run.model, run.label) or run.path.resolve() == target:
            return i
    names = ", ".join(run.label for run in runs)
    raise ValueError(f"--baseline {baseline!r} matches none of the runs ({names})")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
