"""``m1eval grade RUN_DIR`` (re-grade a stored run) and ``m1eval check GOLD ANSWER``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()


def grade(
    run_dir: Annotated[Path, typer.Argument(help="Run folder holding problems.jsonl and samples.jsonl.")],
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Worker processes for symbolic checks.")] = None,
) -> None:
    """Grade (or re-grade) every completion of a run and write grades.parquet."""
    from m1eval.grading import GRADER_VERSION, grade_run
    from m1eval.store import StoreError, describe_repair, repairs_since

    if not run_dir.is_dir():
        console.print(f"[red]error:[/red] {run_dir}: no such run folder")
        raise typer.Exit(2)
    started = time.time()
    try:
        frame = grade_run(run_dir, workers=workers, progress=True)
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    for repair in repairs_since(run_dir, started):  # a torn line cut before grading is said, not silent
        console.print(f"[yellow]warning:[/yellow] {describe_repair(repair)}", highlight=False)
    n = len(frame)
    correct = int(frame["correct"].sum()) if n else 0
    counts = frame["status"].value_counts().to_dict() if n else {}
    console.print(f"graded {n} completions of {frame['problem_id'].nunique() if n else 0} problems "
                  f"({GRADER_VERSION}): {correct} correct ({(correct / n if n else 0):.1%}); statuses {counts}")
    console.print(f"wrote {run_dir / 'grades.parquet'}")


def check(
    gold: Annotated[str, typer.Argument(help="Gold answer (LaTeX).")],
    answer: Annotated[str, typer.Argument(help="Answer to check: LaTeX, or a whole completion with \\boxed{}.")],
    answer_format: Annotated[Optional[str], typer.Option("--format", "-f", help="integer|number|expression|interval|tuple|set|text")] = None,
    tolerance: Annotated[Optional[float], typer.Option("--tolerance", "-t", min=0.0, help="Absolute numeric tolerance.")] = None,
) -> None:
    """Print the verdict and both normalised forms; exit code 0 if equivalent, 1 if not."""
    from m1eval.grading import extract_answer, is_equivalent, normalize_answer
    from m1eval.records import ANSWER_FORMATS

    if answer_format is not None and answer_format not in ANSWER_FORMATS:
        console.print(f"[red]error:[/red] --format {answer_format!r} not in {', '.join(ANSWER_FORMATS)}")
        raise typer.Exit(2)
    boxed = extract_answer(answer) if "\\boxed" in answer or "\\fbox" in answer else None
    candidate = boxed if boxed is not None else answer
    verdict = is_equivalent(gold, candidate, answer_format=answer_format, tolerance=tolerance)
    console.print(f"gold:   {normalize_answer(gold)}", markup=False, highlight=False)
    console.print(f"answer: {normalize_answer(candidate)}" + ("   (from the last box)" if boxed is not None else ""),
                  markup=False, highlight=False)
    console.print("[green]EQUIVALENT[/green]" if verdict else "[red]NOT EQUIVALENT[/red]")
    raise typer.Exit(0 if verdict else 1)


def register(app: typer.Typer) -> None:
    app.command("grade")(grade)
    app.command("check")(check)
