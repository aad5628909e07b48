"""``m1eval bench``: throughput profiles of one or more models, a table and a figure."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from m1eval.cli.common import (
    EngineOptionOption,
    FigureFormatOption,
    VerboseOption,
    parse_engine_options,
    parse_int_list,
)
from m1eval.engines import ENGINES, engine_class

# the engines `m1eval bench` can time: those with timed_greedy (m1eval.engines.base.ThroughputEngine)
PROFILABLE_ENGINES = [name for name in ENGINES if hasattr(engine_class(name), "timed_greedy")]

# Piped output (files, CI logs) is not cut to 80 columns: these tables are wide.
console = Console(width=None if sys.stdout.isatty() else 140)


def _not_available_offline(path: str, revision: str | None) -> str | None:
    """Why a hub model cannot be loaded without the hub (engines would retry it for minutes), else None."""
    from m1eval import hub

    if hub.is_local(path) or not (reason := hub.offline_reason()) or hub.in_cache(path, "config.json", revision):
        return None
    return f"{reason}, and {path!r} is not in the local cache; {hub.MODEL_HINT}"


def print_profiles(profiles) -> None:
    from m1eval.throughput.bench import profile_rows

    table = Table(title="throughput profiles (mean of repeats after warm-up)")
    for column in ("model", "engine", "sweep", "batch", "gen", "tok/s", "latency s", "ms/tok", "status"):
        table.add_column(
            column, justify="right" if column not in ("model", "engine", "sweep", "status") else "left", no_wrap=True
        )
    for row in profile_rows(profiles):
        ok = row["status"] == "ok"
        table.add_row(
            row["model"],
            row["engine"],
            row["sweep"],
            str(row["batch_size"]),
            str(row["gen_len"]),
            f"{row['tokens_per_second']:,.0f}" if ok else "-",
            f"{row['wall_seconds']:.3f}" if ok else "-",
            f"{row['ms_per_token']:.2f}" if ok else "-",
            "ok" if ok else f"[red]{row['status']}[/red]",
        )
    console.print(table)
    for prof in profiles:
        try:
            peak = prof.peak
            console.print(f"{prof.name}: peak {peak.tokens_per_second:,.1f} tokens/s at batch {peak.batch_size}")
        except Exception:  # noqa: BLE001 - a profile with no successful point has no peak
            console.print(f"[red]{prof.name}: no successful measurement[/red]")


def bench(
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="Preset, hub id or local folder; repeat for several.")
    ],
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine",
            "-e",
            help=f"Engine per model ({', '.join(PROFILABLE_ENGINES)}), in --model order; one applies to all.",
        ),
    ] = None,
    option: EngineOptionOption = None,
    batch_sizes: Annotated[
        str, typer.Option("--batch-sizes", help="Batch sizes to time, comma-separated.")
    ] = "1,8,32,128,512",
    prompt_len: Annotated[int, typer.Option("--prompt-len", min=1, help="Random prompt length (tokens).")] = 256,
    gen_len: Annotated[int, typer.Option("--gen-len", min=1, help="Tokens generated per row (EOS ignored).")] = 4096,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs before each point.")] = 2,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs averaged per point.")] = 3,
    gen_lens: Annotated[
        str | None, typer.Option("--gen-lens", help="Length sweep (default gen-len/8 .. gen-len).")
    ] = None,
    length_batch: Annotated[
        int | None, typer.Option("--length-batch", min=1, help="Batch of the length sweep (default: peak batch).")
    ] = None,
    find_peak: Annotated[
        bool, typer.Option("--find-peak/--no-find-peak", help="Double the batch past the list while throughput rises.")
    ] = True,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Largest batch the peak search tries.")] = 4096,
    vocab_size: Annotated[
        int | None,
        typer.Option("--vocab-size", min=2, help="Vocabulary for random prompts (default: the tokenizer's)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random prompts.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for <model>-<engine>.json profiles and the figure.")
    ] = Path("results/bench"),
    figure: Annotated[bool, typer.Option("--figure/--no-figure", help="Also draw throughput.<format>.")] = True,
    fmt: FigureFormatOption = "png",
    verbose: VerboseOption = False,
) -> None:
    """Tokens/s and latency per batch size (peak search) and per generation length; writes profiles."""
    from m1eval.cli.common import build_embedded_model, check_output_dir, error_line
    from m1eval.cli.progress import Bars
    from m1eval.engines import engine_class
    from m1eval.engines.base import EngineError
    from m1eval.engines.vllm import set_log_level
    from m1eval.models.presets import ModelError, resolve_model
    from m1eval.rundir.store import safe_name
    from m1eval.throughput.bench import BenchError, BenchSettings, run_bench

    set_log_level(verbose)
    check_output_dir(out, "--out")  # before an hour of measuring, not at save time
    if fmt not in ("png", "pdf", "svg"):
        raise typer.BadParameter(f"--format must be png, pdf or svg, got {fmt!r}")
    engines = list(engine or [])
    if engines and len(engines) not in (1, len(model)):
        raise typer.BadParameter(
            f"--engine given {len(engines)} times for {len(model)} models: give one, or one per model"
        )
    settings = BenchSettings(
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes") or [],
        prompt_len=prompt_len,
        gen_len=gen_len,
        warmup=warmup,
        repeats=repeats,
        find_peak=find_peak,
        max_batch=max_batch,
        gen_lens=parse_int_list(gen_lens, "--gen-lens"),
        length_batch=length_batch,
        seed=seed,
    )
    try:
        settings.validate()
    except BenchError as exc:
        raise typer.BadParameter(str(exc)) from None
    user_options = parse_engine_options(option or [])
    profiles, failures = [], []
    interrupted = False
    for i, name in enumerate(model):
        chosen = engines[i] if len(engines) == len(model) else (engines[0] if engines else None)
        try:
            build_embedded_model(name)
            resolved = resolve_model(name, chosen)
            options = {**resolved.engine_options, **user_options.get(None, {}), **user_options.get(resolved.engine, {})}
            if reason := _not_available_offline(resolved.path, options.get("revision")):
                raise ModelError(reason)
            instance = engine_class(resolved.engine)(resolved.path, options=options)
        except (ModelError, EngineError) as exc:
            error_line(console, f"{name}: {exc}")
            failures.append(name)
            continue
        try:
            with Bars("runs") as bars:
                prof = run_bench(
                    instance,
                    settings,
                    model=resolved.path,
                    engine_name=resolved.engine,
                    display_name=resolved.name,
                    engine_options=options,
                    vocab_size=vocab_size,
                    progress=bars,
                )
        except BenchError as exc:
            error_line(console, f"{name}: {exc}")
            failures.append(name)
            continue
        finally:
            instance.close()
        path = prof.save(out / f"{safe_name(resolved.name)}-{resolved.engine}.json")
        console.print(f"profile written: {path}")
        profiles.append(prof)
        if prof.settings.get("interrupted"):
            console.print(f"[yellow]interrupted: {path} holds the {len(prof.measurements)} finished point(s)[/yellow]")
            interrupted = True
            break
        failed_points = [m for m in prof.measurements if m.status == "error"]
        if failed_points:
            console.print(f"[red]{name}: {len(failed_points)} point(s) failed:[/red] {failed_points[0].error}")
            failures.append(name)
    if profiles:
        print_profiles(profiles)
        if figure:
            from m1eval.figures.plots import figure_throughput, save

            fig_path = save(figure_throughput(profiles), out, "throughput", fmt)
            console.print(f"figure written: {fig_path}")
    if interrupted:
        raise typer.Exit(130)
    if failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
