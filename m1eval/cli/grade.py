"""``m1eval grade RUN_DIR`` (re-grade a stored run) and ``m1eval check GOLD ANSWER``.

``check`` reads a completion exactly as ``grade`` does (same extraction policy, same
normalisation, same verdict, same statuses), so what it prints is what a run would score.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from m1eval.cli.common import EXTRACTION_HELP, error_line

console = Console()

EXIT_EQUIVALENT, EXIT_NOT_EQUIVALENT, EXIT_USAGE, EXIT_NO_VERDICT = 0, 1, 2, 3
MAX_ECHO_CHARS = 400
_ESCAPES = re.compile(r"\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?|\x1b.?")
_COMPLETION_MARKERS = ("\\boxed", "\\fbox", "\\framebox", "<think>", "</think>", "\n")


def printable(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """Model text made safe to echo: terminal escape sequences and control characters shown, not run."""
    text = _ESCAPES.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    text = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def grade(
    run_dir: Annotated[Path, typer.Argument(help="Run folder holding problems.jsonl and samples.jsonl.")],
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Worker processes for symbolic checks.")
    ] = None,
    extraction: Annotated[
        str | None,
        typer.Option(
            "--extraction",
            help=EXTRACTION_HELP + " Default: the policy recorded "
            "in the run's manifest, else boxed; the one used is recorded.",
        ),
    ] = None,
    allow_modified: Annotated[
        bool,
        typer.Option(
            "--allow-modified-problems",
            help="Grade a run whose problems.jsonl differs from the hashes recorded at generation "
            "(edited golds); the run is then marked modified, with the problem ids, in grade, report and plot.",
        ),
    ] = False,
) -> None:
    """Grade (or re-grade) every completion of a run and write grades.parquet.

    Ctrl-C (or SIGTERM) stops with one line and keeps the verdicts already computed for the
    next `m1eval grade` of the same run.
    """
    from m1eval.cli.progress import Bars
    from m1eval.grading import GRADER_VERSION, PolicyError, canonical_policy
    from m1eval.pipeline.stages import GradingInterrupted, ProblemsModifiedError, grade_stage
    from m1eval.rundir.store import RunLockedError, StoreError, describe_repair, repairs_since

    if extraction is not None:
        try:
            extraction = canonical_policy(extraction)
        except PolicyError as exc:
            error_line(console, f"--extraction: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
    if not run_dir.is_dir():
        error_line(console, f"{run_dir}: no such run folder")
        raise typer.Exit(EXIT_USAGE)
    # A background job starts with SIGINT ignored; grade stops on it as `run` does.
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.time()
    try:
        with Bars("completions") as bars:
            graded = grade_stage(
                run_dir, workers=workers, extraction=extraction, progress=bars, allow_modified=allow_modified
            )
    except ProblemsModifiedError as exc:
        error_line(console, printable(f"{exc} (--allow-modified-problems grades it and marks the run modified)", 4000))
        raise typer.Exit(EXIT_USAGE) from None
    except (StoreError, RunLockedError) as exc:
        error_line(console, str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:  # a file the store could not read (its writes are StoreErrors already)
        error_line(console, f"{run_dir}: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        raise typer.Exit(EXIT_USAGE) from None
    except GradingInterrupted as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(130) from None
    except RuntimeError as exc:  # the grading workers could not run at all
        error_line(console, str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print(f"[yellow]grading of {run_dir} interrupted; grades.parquet unchanged[/yellow]")
        raise typer.Exit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for repair in repairs_since(run_dir, started):  # a torn line cut before grading is said, not silent
        console.print(f"[yellow]warning:[/yellow] {describe_repair(repair)}", highlight=False)
    frame, check = graded.grades, graded.problems
    if check is not None and check.state != "verified":
        style = "[yellow]warning:[/yellow]" if check.is_modified else "note:"
        marked = "; graded as a modified run (report and plot mark it)" if check.is_modified else ""
        console.print(f"{style} {escape(printable(check.describe(), 2000))}{marked}", highlight=False, soft_wrap=True)
    n = len(frame)
    correct = int(frame["correct"].sum()) if n else 0
    counts = frame["status"].value_counts().to_dict() if n else {}
    rules = frame["extracted_by"].value_counts().to_dict() if n and "extracted_by" in frame else {}
    console.print(
        f"graded {n} completions of {frame['problem_id'].nunique() if n else 0} problems "
        f"({GRADER_VERSION}): {correct} correct ({(correct / n if n else 0):.1%}); statuses {counts}; "
        f"answers found by {rules or 'no rule'}"
    )
    console.print(f"wrote {run_dir / 'grades.parquet'}")


def _read_answer(answer: str | None, answer_file: Path | None) -> str:
    if answer_file is not None and answer is not None:
        console.print("[red]error:[/red] give the answer as an argument or with --file, not both")
        raise typer.Exit(EXIT_USAGE)
    if answer_file is not None:
        try:
            return answer_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            error_line(console, f"--file {answer_file}: {exc.strerror or exc}")
            raise typer.Exit(EXIT_USAGE) from None
    if answer is None:
        console.print("[red]error:[/red] no answer: give it as an argument, '-' for stdin, or --file PATH")
        raise typer.Exit(EXIT_USAGE)
    if answer == "-":
        return sys.stdin.read()
    return answer


def check(
    gold: Annotated[str, typer.Argument(help="Gold answer (LaTeX).")],
    answer: Annotated[
        str | None,
        typer.Argument(help="A bare answer, or a whole completion (read like `grade` reads it); '-' reads stdin."),
    ] = None,
    answer_file: Annotated[
        Path | None, typer.Option("--file", "-F", help="Read the answer/completion from a file.")
    ] = None,
    extraction: Annotated[str, typer.Option("--extraction", help=EXTRACTION_HELP)] = "boxed",
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="completion: extract as `grade` does; bare: the text is the answer; auto: completion when "
            "the text has a box command, a think tag or a line break.",
        ),
    ] = "auto",
    answer_format: Annotated[
        str | None, typer.Option("--answer-format", help="integer|number|expression|interval|tuple|set|text")
    ] = None,
    tolerance: Annotated[float | None, typer.Option("--tolerance", min=0.0, help="Absolute numeric tolerance.")] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.01, help="Hard deadline in seconds (as in `grade`).")
    ] = 5.0,
) -> None:
    """Print the verdict, its status and both normalised forms.

    Exit code 0: equivalent; 1: not equivalent; 3: no verdict (no answer found, unparsable,
    timeout), which `grade` scores as wrong; 2: usage error.
    """
    from m1eval.grading import PolicyError, canonical_policy, check_answer
    from m1eval.records import ANSWER_FORMATS

    if not gold.strip():
        console.print("[red]error:[/red] the gold answer is empty")
        raise typer.Exit(EXIT_USAGE)
    if answer_format is not None and answer_format not in ANSWER_FORMATS:
        error_line(console, f"--format {answer_format!r} not in {', '.join(ANSWER_FORMATS)}")
        raise typer.Exit(EXIT_USAGE)
    if mode not in ("auto", "completion", "bare"):
        error_line(console, f"--mode {mode!r} not in auto, completion, bare")
        raise typer.Exit(EXIT_USAGE)
    try:
        policy = canonical_policy(extraction)
    except PolicyError as exc:
        error_line(console, f"--extraction: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    text = _read_answer(answer, answer_file)
    completion = mode == "completion" or (mode == "auto" and any(m in text for m in _COMPLETION_MARKERS))
    result = check_answer(
        gold,
        text,
        policy=policy if completion else None,
        answer_format=answer_format,
        tolerance=tolerance,
        timeout=timeout,
    )
    console.print(f"gold:   {printable(result.gold_normalized or gold)}", markup=False, highlight=False)
    if completion:
        found = f"found by {result.extracted_by}" if result.extracted_by else "no answer found"
        how = f"   (completion, extraction {policy}: {found})"
    else:
        how = "   (bare answer)"
    shown = result.answer_normalized if result.answer_normalized is not None else (result.answer or "-")
    console.print(f"answer: {printable(shown)}{how}", markup=False, highlight=False)
    console.print(f"status: {result.status}", markup=False, highlight=False)
    if result.status == "ok":
        console.print("[green]EQUIVALENT[/green]" if result.correct else "[red]NOT EQUIVALENT[/red]")
        raise typer.Exit(EXIT_EQUIVALENT if result.correct else EXIT_NOT_EQUIVALENT)
    labels = {"no_answer": "NO ANSWER", "unparsable": "UNPARSABLE", "timeout": f"TIMEOUT (>{timeout:g} s)"}
    console.print(f"[yellow]{labels.get(result.status, result.status.upper())}[/yellow]: `grade` scores this as wrong")
    raise typer.Exit(EXIT_NO_VERDICT)


def register(app: typer.Typer) -> None:
    app.command("grade")(grade)
    app.command("check")(check)
