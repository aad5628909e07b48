"""``m1eval run``: generate k samples per problem through an engine, store, grade, report."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from m1eval.engines.base import EngineError
from m1eval.models import ModelError
from m1eval.prompts import PromptError
from m1eval.runner import RunConfig, RunError, generate, plan_run
from m1eval.store import RunLockedError, StoreError
from m1eval.tasks import TaskError

console = Console(stderr=True)


def parse_engine_option(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON when it parses (numbers, true/false, objects)."""
    if "=" not in text:
        raise typer.BadParameter(f"--engine-option {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise typer.BadParameter(f"--engine-option {text!r}: empty key")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def collect_options(pairs: list[str], explicit: dict[str, Any], endpoints: list[str]) -> dict[str, Any]:
    options = dict(parse_engine_option(p) for p in pairs)
    options.update({k: v for k, v in explicit.items() if v is not None})
    if endpoints:
        options["endpoints"] = list(endpoints)
    return options


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def grade_and_report(path: Path) -> None:
    """The grading and report stages, from the modules that own them."""
    try:
        from m1eval.grading import grade_run
    except ImportError as exc:
        raise RunError(f"grading stage unavailable ({exc}); samples are stored in {path}, "
                       f"grade them later with `m1eval grade {path}`") from exc
    try:
        from m1eval.report import render_report, summarize_run
        from m1eval.rundata import load_run
    except ImportError as exc:
        raise RunError(f"report stage unavailable ({exc}); samples and grades are in {path}") from exc
    grade_run(path)
    summary = summarize_run(load_run(path))
    typer.echo(render_report([summary]))


def run(
    model: Annotated[str, typer.Option("--model", "-m", help="Preset (see `m1eval models`), hub id or local folder.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Benchmark name (see `m1eval tasks`).")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Samples per problem.")] = 1,
    engine: Annotated[str | None, typer.Option(help="vllm | hf | openai | m1 (default: the preset's).")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0, help="Default: the preset's.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", min=0.0, max=1.0, help="Default: the preset's.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="-1 disables.")] = -1,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="Max new tokens (default 32768).")] = None,
    seed: Annotated[int, typer.Option(help="Run seed; sample i of problem p uses a seed derived from it.")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N problems (deterministic).")] = None,
    out: Annotated[Path, typer.Option(help="Results root; runs go to <out>/<task>/<model>/<run-id>.")] = Path("results"),
    run_id: Annotated[str | None, typer.Option("--run-id", help="Override the config-derived run id.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Folder of <task>/test.jsonl.")] = None,
    suffix: Annotated[str | None, typer.Option(help="Instruction after the question (default: the preset's).")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    endpoint: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server URL (repeatable).")] = None,
    engine_option: Annotated[list[str] | None, typer.Option("--engine-option", "-o", help="key=value passed to the engine (repeatable).")] = None,
    tensor_parallel_size: Annotated[int | None, typer.Option(min=1)] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="vLLM; on CPU the share of RAM (~0.2-0.3).")] = None,
    max_model_len: Annotated[int | None, typer.Option(min=1)] = None,
    dtype: Annotated[str | None, typer.Option()] = None,
    enforce_eager: Annotated[bool | None, typer.Option("--enforce-eager/--no-enforce-eager")] = None,
    max_num_seqs: Annotated[int | None, typer.Option(min=1)] = None,
    chunk_size: Annotated[int | None, typer.Option(min=1, help="Samples per engine call (resume granularity).")] = None,
    grade: Annotated[bool, typer.Option("--grade/--no-grade", help="Grade and print the report after generating.")] = True,
    allow_unpinned: Annotated[bool, typer.Option("--allow-unpinned")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the engine's own log (vLLM INFO lines).")] = False,
) -> None:
    """Generate k samples per problem, store them (resumable), then grade and report."""
    if verbose:
        os.environ["VLLM_LOGGING_LEVEL"] = "INFO"
    explicit = dict(tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                    max_model_len=max_model_len, dtype=dtype, enforce_eager=enforce_eager, max_num_seqs=max_num_seqs)
    config = RunConfig(
        model=model, task=task, k=k, engine=engine, temperature=temperature, top_p=top_p, top_k=top_k,
        max_tokens=max_tokens, seed=seed, stop=list(stop or []), suffix=suffix, limit=limit, data_dir=data_dir,
        out=out, run_id=run_id, engine_options=collect_options(list(engine_option or []), explicit, list(endpoint or [])),
        chunk_size=chunk_size, allow_unpinned=allow_unpinned,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        plan = plan_run(config)
        outcome = generate(plan, console=console)
    except (ModelError, TaskError, EngineError, PromptError, RunError, RunLockedError, StoreError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if outcome.state == "interrupted":
        console.print(f"[yellow]{outcome.message}[/yellow]")
        raise typer.Exit(130)
    if outcome.state == "failed":
        console.print(f"[red]error:[/red] {outcome.message}")
        raise typer.Exit(1)
    console.print(f"[green]generated {outcome.generated} samples[/green]; {outcome.stored}/{outcome.expected} "
                  f"stored in {outcome.path}")
    if grade:
        try:
            grade_and_report(outcome.path)
        except RunError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("run")(run)
