"""``m1eval run``: generate k samples per problem through an engine, store, grade, report."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from m1eval.cli.common import (
    EXTRACTION_HELP,
    AllowUnpinnedOption,
    DataDirOption,
    EngineOptionOption,
    ModelOption,
    VerboseOption,
    build_embedded_model,
    check_output_dir,
    error_line,
    parse_engine_options,
)
from m1eval.cli.progress import Bars, RunProgress
from m1eval.engines import ENGINES
from m1eval.engines.base import EngineError
from m1eval.engines.options import OptionError
from m1eval.engines.replicas import REPLICA_ENGINES
from m1eval.engines.vllm import set_log_level
from m1eval.models.presets import ModelError, preset_extraction
from m1eval.models.prompts import PromptError
from m1eval.pipeline.runner import RunConfig, RunError, generate, plan_run
from m1eval.rundir.store import RunLockedError, StoreError
from m1eval.tasks.loader import TaskError

console = Console(stderr=True)


def collect_options(
    pairs: list[str], explicit: dict[str, Any], endpoints: list[str], engine: str | None
) -> dict[str, Any]:
    """The engine options of one run: ``-o key=value`` and ``-o ENGINE:key=value`` for this run's
    ``--engine``, then the dedicated flags (``--dtype`` ...), then ``--endpoint``."""
    scoped = parse_engine_options(pairs)
    other = sorted(scope for scope in scoped if scope is not None and scope != engine)
    if other:
        raise typer.BadParameter(
            f"--engine-option {other[0]}:...: this run's engine is {engine or 'the preset default'}; "
            "scope an option to an engine only together with --engine"
        )
    options = {**scoped.get(None, {}), **scoped.get(engine, {})}
    options.update({k: v for k, v in explicit.items() if v is not None})
    if endpoints:
        options["endpoints"] = list(endpoints)
    return options


def replica_settings(replicas: int | None, ray_address: str | None, gpus: float | None, cpus: float) -> Any:
    """``--replicas`` and its companions as ``ReplicaSettings`` (None without ``--replicas``)."""
    if replicas is None:
        if ray_address is not None or gpus is not None:
            raise RunError("--ray-address and --gpus-per-replica need --replicas N")
        return None
    from m1eval.engines.replicas import ReplicaSettings, check_ray_address

    if ray_address is not None:
        check_ray_address(ray_address)  # seconds, before any model or run folder is touched
    return ReplicaSettings(replicas=replicas, ray_address=ray_address, gpus_per_replica=gpus, cpus_per_replica=cpus)


# The flags that set an engine option whose value the library refused (it names options, not flags).
OPTION_FLAGS = {"endpoints": "--endpoint URL"}


def _flag_hint(exc: Exception) -> str:
    flag = OPTION_FLAGS.get(getattr(exc, "option", None) or "") if isinstance(exc, OptionError) else None
    return f" (give it with {flag})" if flag else ""


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def resolve_extraction(option: str | None, preset: str | None) -> str:
    """``--extraction``, else the preset's policy, else ``boxed``; validated (BadParameter)."""
    from m1eval.grading.extract import PolicyError, canonical_policy

    chosen = option if option is not None else preset_extraction(preset or "")
    try:
        return canonical_policy(chosen)
    except PolicyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--extraction") from None


def run(
    model: ModelOption,
    task: Annotated[str, typer.Option("--task", "-t", help="Benchmark name (see `m1eval tasks`).")],
    k: Annotated[
        int,
        typer.Option(
            "--k",
            "-k",
            min=1,
            help="Samples drawn per problem (the report's n; its pass@k and maj@k use subsets of k <= n of them).",
        ),
    ] = 1,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine", "-e", help=f"{' | '.join(ENGINES)} (default: the preset's; options: `m1eval engines`)."
        ),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(min=0.0, help="Sampling temperature (default: the preset's).")
    ] = None,
    top_p: Annotated[
        float | None, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling mass (default: the preset's).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Sample among the k likeliest tokens; -1 disables.")] = -1,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens", min=1, help="Max new tokens (default: the preset's protocol for the task, else 32768)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Run seed; sample i of problem p uses a seed derived from it.")] = 0,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Only the first N problems (deterministic).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Results root; runs go to <out>/<task>/<model>/<run-id>.")] = Path(
        "results"
    ),
    run_id: Annotated[str | None, typer.Option("--run-id", help="Override the config-derived run id.")] = None,
    data_dir: DataDirOption = None,
    suffix: Annotated[str | None, typer.Option(help="Instruction after the question (default: the preset's).")] = None,
    join: Annotated[
        str | None,
        typer.Option(
            help="Question/instruction join: newline | space | blank_line (default: the preset's protocol for the task)."
        ),
    ] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    endpoint: Annotated[list[str] | None, typer.Option(help="OpenAI-compatible server URL (repeatable).")] = None,
    engine_option: EngineOptionOption = None,
    tensor_parallel_size: Annotated[int | None, typer.Option(min=1, help="vLLM: GPUs to shard the model over.")] = None,
    gpu_memory_utilization: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="vLLM; on CPU the share of RAM (~0.2-0.3).")
    ] = None,
    max_model_len: Annotated[
        int | None, typer.Option(min=1, help="vLLM: context length (prompt + completion) to reserve memory for.")
    ] = None,
    dtype: Annotated[
        str | None, typer.Option(help="Weights dtype, e.g. bfloat16, float16, float32 (default: the engine's).")
    ] = None,
    enforce_eager: Annotated[
        bool | None,
        typer.Option("--enforce-eager/--no-enforce-eager", help="vLLM: no CUDA graphs (less memory, slower)."),
    ] = None,
    max_num_seqs: Annotated[int | None, typer.Option(min=1, help="vLLM: most sequences decoded at once.")] = None,
    chunk_size: Annotated[int | None, typer.Option(min=1, help="Samples per engine call (resume granularity).")] = None,
    grade: Annotated[
        bool, typer.Option("--grade/--no-grade", help="Grade and print the report after generating.")
    ] = True,
    allow_unpinned: AllowUnpinnedOption = False,
    verbose: VerboseOption = False,
    extraction: Annotated[
        str | None, typer.Option("--extraction", help=EXTRACTION_HELP + " Default: the preset's.")
    ] = None,
    replicas: Annotated[
        int | None, typer.Option(min=1, help=f"Run the engine as N Ray actors ({', '.join(REPLICA_ENGINES)}).")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="Join this Ray cluster (HOST:PORT, ray://HOST:PORT or auto); default: a local Ray."
        ),
    ] = None,
    gpus_per_replica: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-replica", min=0.0, help="GPUs per replica (default: 1 when the cluster has GPUs, else 0)."
        ),
    ] = None,
    cpus_per_replica: Annotated[
        float, typer.Option("--cpus-per-replica", min=0.01, help="CPUs Ray reserves per replica.")
    ] = 1.0,
) -> None:
    """Generate k samples per problem, store them (resumable), then grade and report."""
    set_log_level(verbose)
    check_output_dir(out, "--out")
    policy = resolve_extraction(extraction, model)
    explicit = {
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "max_model_len": max_model_len,
        "dtype": dtype,
        "enforce_eager": enforce_eager,
        "max_num_seqs": max_num_seqs,
    }
    config = RunConfig(
        model=model,
        task=task,
        k=k,
        engine=engine,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_tokens=max_tokens,
        seed=seed,
        stop=list(stop or []),
        suffix=suffix,
        join=join,
        limit=limit,
        data_dir=data_dir,
        out=out,
        run_id=run_id,
        engine_options=collect_options(list(engine_option or []), explicit, list(endpoint or []), engine),
        chunk_size=chunk_size,
        allow_unpinned=allow_unpinned,
    )
    # Ctrl-C and SIGTERM stop the run as interrupted, also when it was started in the background
    # (a shell's `&` starts it with SIGINT ignored, while vLLM's engine processes would not ignore it).
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        config.replicas = replica_settings(replicas, ray_address, gpus_per_replica, cpus_per_replica)
        build_embedded_model(model)
        plan = plan_run(config)
        check_output_dir(plan.path, "--out")
        if limit is not None and limit > plan.task_rows:
            console.print(
                f"note: --limit {limit} is more than the {plan.task_rows} problems of {task}: "
                f"all {len(plan.problems)} are run",
                highlight=False,
                soft_wrap=True,
            )
        outcome = generate(plan, observer=RunProgress(console))
    except (ModelError, TaskError, EngineError, PromptError, RunError, RunLockedError, StoreError) as exc:
        error_line(console, str(exc) + _flag_hint(exc))
        raise typer.Exit(2) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if outcome.state == "interrupted":
        console.print(f"[yellow]{outcome.message}[/yellow]")
        raise typer.Exit(130)
    if outcome.state == "failed":
        error_line(console, outcome.message)
        raise typer.Exit(1)
    console.print(
        f"[green]generated {outcome.generated} samples[/green]; {outcome.stored}/{outcome.expected} "
        f"stored in {outcome.path}"
    )
    from m1eval.pipeline.stages import GradingInterrupted, grade_and_summarize, record_extraction

    if grade:
        try:
            with Bars("completions") as bars:
                table = grade_and_summarize(outcome.path, extraction=policy, progress=bars)
        except GradingInterrupted as exc:
            console.print(f"[yellow]{exc}[/yellow]")
            raise typer.Exit(130) from None
        typer.echo(table)
    else:
        record_extraction(outcome.path, policy, explicit=extraction is not None)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
