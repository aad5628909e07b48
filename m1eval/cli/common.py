"""What the verbs share: option types (one meaning per flag), parsers, one-line errors, output checks.

A verb that measures for an hour and then cannot write its result has lost the hour, so
every verb that writes checks its output paths first (``check_output_dir``,
``check_output_file``) and stops with one line naming the option and the path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape


def error_line(console: Console, message: str) -> None:
    """``error: message`` on one line: not wrapped at the terminal width, markup in it shown as text."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def output_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a writable folder, or None when it can."""
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable"
        return None
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        return f"{base} is a file, so {path} cannot be created as a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"cannot create {path}: {base} is not writable"
    return None


def output_file_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path``, or None when it can."""
    if path.is_dir():
        return f"{path} is a folder, not a file"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    problem = output_dir_problem(path.absolute().parent)
    return None if problem is None else f"cannot write {path}: {problem}"


_stderr = Console(stderr=True)


def check_output_dir(path: Path | None, option: str) -> None:
    """Stop (exit 2, one line) before any work when ``option``'s folder could not be written."""
    if path is not None and (problem := output_dir_problem(Path(path))):
        error_line(_stderr, f"{option}: {problem}")
        raise typer.Exit(2)


def check_output_file(path: Path | None, option: str) -> None:
    """Stop (exit 2, one line) before any work when ``option``'s file could not be written."""
    if path is not None and (problem := output_file_problem(Path(path))):
        error_line(_stderr, f"{option}: {problem}")
        raise typer.Exit(2)


# ---------------------------------------------------------------------------------------------
# Parsers shared by the verbs: one syntax per flag wherever it appears.


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    """``1,8,32`` as positive integers (``--batch-sizes``, ``--gen-lens``, ``--lengths``)."""
    if text is None:
        return None
    try:
        values = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise typer.BadParameter(f"{option}: expected comma-separated integers like 1,8,32, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise typer.BadParameter(f"{option}: expected positive integers, got {text!r}")
    return values


def parse_engine_options(pairs: list[str]) -> dict[str | None, dict[str, Any]]:
    """``-o key=value`` (every engine) or ``-o engine:key=value`` (that engine only), by scope.

    Values are JSON when they parse (numbers, true/false, objects), else strings; dashes in
    keys read as underscores. Scoping lets one ``bench`` pass vLLM's ``max_num_seqs``
    without the m1 engine rejecting an option it does not know.
    """
    out: dict[str | None, dict[str, Any]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"--engine-option {pair!r}: expected key=value or engine:key=value")
        key, raw = pair.split("=", 1)
        scope, _, name = key.strip().rpartition(":")
        name = name.strip().replace("-", "_")
        if not name:
            raise typer.BadParameter(f"--engine-option {pair!r}: empty key")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(scope.strip() or None, {})[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Option types shared by the verbs. A flag means one thing everywhere:
#   -o  --engine-option   key=value for the engine (run, bench)
#   -f  --format          the format of what the verb writes (report: table..json; bench, plot: png|pdf|svg)
#   -p  --profile         throughput profile JSON from `m1eval bench` (budget, plot)
#   -m  --model, -e --engine, -t --task, -k, -n --limit, -v --verbose, -w --workers
#   --out                 where the verb writes (a folder; report: a file)
#   --sign-flips          sign flips of the paired test's p-value; 0: no intervals, no p-values (report, budget,
#                         plot; the intervals are closed-form). Old spellings --resamples, -B/--bootstrap: hidden
#   --level               confidence level of intervals and bands (report, budget, plot)
#   --seed                the seed of the verb's randomness (run: sampling; bench: prompts; analysis: sign flips)

EXTRACTION_HELP = (
    "Answer extraction policy: boxed (default; the paper's protocol), lenient, or a comma list of "
    "boxed, answer-phrase, last-math, last-number."
)
RunsArgument = Annotated[list[Path], typer.Argument(help="Run folders, or folders containing run folders.")]
ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Preset (see `m1eval models`), hub id or local folder.")
]
EngineOptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--engine-option",
        "-o",
        help="Engine option key=value, or engine:key=value for one engine "
        "(repeatable; values read as JSON). Each engine's options: `m1eval engines`.",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Local folder laid out as <task>/test.jsonl (default: $M1EVAL_DATA_DIR, else the hub)."
    ),
]
AllowUnpinnedOption = Annotated[
    bool,
    typer.Option("--allow-unpinned", help="Use rows that fail the task's pinned hash (a run is recorded as unpinned)."),
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Show the engines' INFO logs and warnings (vLLM's and torch's are quiet otherwise)."
    ),
]
FigureFormatOption = Annotated[str, typer.Option("--format", "-f", help="Figure format: png, pdf or svg.")]
FigureSizeOption = Annotated[
    str,
    typer.Option(
        "--size",
        help="Figure width: single (one column of a two-column paper, 3.4 in, panels stacked) "
        "or double (the page width, 7 in, two panels a row).",
    ),
]
ProfileOption = Annotated[
    list[Path] | None, typer.Option("--profile", "-p", help="Throughput profile JSON from `m1eval bench`; repeat.")
]
ClockOption = Annotated[
    str,
    typer.Option(
        "--clock",
        help="What prices a sample: auto (a matching profile, else the run's own batches), profile or batches.",
    ),
]
BatchSizeOption = Annotated[
    float | None, typer.Option("--batch-size", help="Operating batch size read from the profile (default: its peak).")
]
TokensPerSampleOption = Annotated[
    float | None,
    typer.Option(
        "--tokens-per-sample",
        min=1,
        help="Price every sample at N tokens (the M1 paper: 8192 at peak throughput) "
        "instead of each run's mean completion length.",
    ),
]
MetricOption = Annotated[str, typer.Option("--metric", help="maj (majority vote) or pass (pass@k).")]
LengthAwareOption = Annotated[
    bool,
    typer.Option(
        "--length-aware/--no-length-aware",
        help="Rescale profile throughput to the run's mean completion length (length sweep).",
    ),
]
LengthsOption = Annotated[
    str | None, typer.Option("--lengths", help="Token budgets L to cut completions at, e.g. 1024,2048,4096.")
]
SignFlipsOption = Annotated[
    int,
    typer.Option(
        "--sign-flips",
        min=0,
        help="Sign flips of the paired test's p-value; the intervals are closed-form (0: no intervals, no p-values).",
    ),
]
# The flag's names before it said what it is (there has been no bootstrap since issue 17); hidden.
OldSignFlipsOption = Annotated[int | None, typer.Option("--resamples", "--bootstrap", "-B", min=0, hidden=True)]


def sign_flips_of(value: int, old_spelling: int | None) -> int:
    """``--sign-flips``, or the old ``--resamples``/``--bootstrap`` when only that was given."""
    return value if old_spelling is None else old_spelling


SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the sign flips.")]
LevelOption = Annotated[float, typer.Option("--level", min=0.5, max=0.999, help="Confidence level of the intervals.")]


def build_embedded_model(model: str) -> None:
    """Convert an embedded preset's weights now if this is their first use, drawing the steps
    (the library converts silently when nothing draws for it). ``ModelError`` passes through."""
    from m1eval.models.presets import build_embedded, embedded_needs_building

    if embedded_needs_building(model):
        from m1eval.cli.progress import Bars, announce

        with Bars("steps") as bars:
            build_embedded(model, progress=bars, announce=announce)
