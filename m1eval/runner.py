"""The generation loop of ``m1eval run``: plan what is missing, generate it chunk by chunk, store it.

Resume is a set difference: the run folder's ``samples.jsonl`` says which (problem,
sample) pairs exist, and only the rest is requested, each with the seed
``sample_seed(run seed, problem, index)``. So re-running a killed run, or asking for a
larger k, draws exactly the missing samples with the same seeds they would have had.
Each chunk of problems is one engine call; every batch the engine yields is appended
(fsynced) the moment it arrives, which bounds the work a crash can lose to one batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import TextColumn

from m1eval import tasks as task_lib
from m1eval.engines.base import ENGINES, EngineError, EngineOutOfMemory, GenerationRequest, engine_class
from m1eval.models import ResolvedModel, resolve_model
from m1eval.progress import make_progress
from m1eval.prompts import load_tokenizer, render, template_hash
from m1eval.records import Problem, SamplingConfig
from m1eval.runinfo import config_hash, host, versions
from m1eval.seeding import sample_seed
from m1eval.store import RunStore, run_path

DEFAULT_CHUNK_SAMPLES = 512
# Engine options that change the sampled text; the others (memory share, parallelism,
# concurrency, endpoints) only change speed and stay out of the run id.
RESULT_OPTIONS = ("dtype", "hf_overrides", "quantization", "kv_cache_dtype", "revision")


class RunError(Exception):
    """The run cannot go on; the message says why and what was kept."""


@dataclass
class RunConfig:
    """Everything ``m1eval run`` was asked; None means "the preset's default"."""

    model: str
    task: str
    k: int
    engine: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int = -1
    max_tokens: int | None = None
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    suffix: str | None = None
    limit: int | None = None
    data_dir: Path | None = None
    out: Path = Path("results")
    run_id: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    chunk_size: int | None = None  # samples per engine call
    allow_unpinned: bool = False


@dataclass
class RunPlan:
    config: RunConfig
    model: ResolvedModel
    problems: list[Problem]
    sampling: SamplingConfig
    suffix: str
    run_id: str
    path: Path
    engine_options: dict[str, Any]
    task_rows: int = 0


@dataclass
class RunOutcome:
    path: Path
    state: str  # "done" | "interrupted" | "failed"
    generated: int
    stored: int
    expected: int
    message: str = ""


# ---------------------------------------------------------------------------- planning


def derive_run_id(plan_fields: dict[str, Any]) -> str:
    """A readable id from the settings that change the samples; k is left out so runs can grow."""
    s = plan_fields["sampling"]
    digest = config_hash(plan_fields)
    return f"{plan_fields['engine']}-t{s['temperature']:g}-p{s['top_p']:g}-max{s['max_tokens']}-seed{s['seed']}-{digest}"


def identity(model: ResolvedModel, task: str, limit: int | None, sampling: SamplingConfig, suffix: str,
             engine_options: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumed run must share with the stored one."""
    sampling_dict = sampling.to_dict()
    sampling_dict.pop("n")
    return {
        "task": task,
        "limit": limit,
        "model": model.source or model.path,
        "engine": model.engine,
        "sampling": sampling_dict,
        "suffix": suffix,
        "options": {k: engine_options[k] for k in RESULT_OPTIONS if k in engine_options},
    }


def plan_run(config: RunConfig) -> RunPlan:
    """Resolve model, engine and task without loading anything heavy (bad input fails here, fast)."""
    if config.k < 1:
        raise RunError(f"--k must be at least 1, got {config.k}")
    model = resolve_model(config.model, config.engine)
    if model.engine not in ENGINES:
        raise EngineError(f"unknown engine {model.engine!r}; choose one of {', '.join(sorted(ENGINES))}")
    all_problems = task_lib.load_task(config.task, config.data_dir, allow_unpinned=config.allow_unpinned)
    problems = task_lib.select_subset(all_problems, config.limit)
    sampling = SamplingConfig(
        n=config.k,
        temperature=model.temperature if config.temperature is None else config.temperature,
        top_p=model.top_p if config.top_p is None else config.top_p,
        top_k=config.top_k,
        max_tokens=model.max_tokens if config.max_tokens is None else config.max_tokens,
        seed=config.seed,
        stop=list(config.stop),
    )
    suffix = model.suffix if config.suffix is None else config.suffix
    options = {**model.engine_options, **config.engine_options}
    ident = identity(model, config.task, config.limit, sampling, suffix, options)
    run_id = config.run_id or derive_run_id(ident)
    path = run_path(config.out, config.task, model.name, run_id)
    return RunPlan(config, model, problems, sampling, suffix, run_id, path, options, len(all_problems))


def pending_requests(
    problems: Sequence[Problem], prompts: dict[str, tuple[str, list[int]]], finished: set[tuple[str, int]],
    k: int, run_seed: int,
) -> list[GenerationRequest]:
    """One request per problem with its missing sample indices below k and their seeds."""
    out = []
    for problem in problems:
        missing = [i for i in range(k) if (problem.id, i) not in finished]
        if missing:
            text, ids = prompts[problem.id]
            out.append(GenerationRequest(
                problem_id=problem.id, prompt=text, sample_indices=missing,
                seeds=[sample_seed(run_seed, problem.id, i) for i in missing], prompt_token_ids=ids,
            ))
    return out


def chunk_requests(requests: Sequence[GenerationRequest], samples_per_chunk: int) -> list[list[GenerationRequest]]:
    """Whole problems per chunk, about ``samples_per_chunk`` samples each (at least one problem)."""
    chunks: list[list[GenerationRequest]] = []
    current: list[GenerationRequest] = []
    size = 0
    for request in requests:
        if current and size + len(request.sample_indices) > samples_per_chunk:
            chunks.append(current)
            current, size = [], 0
        current.append(request)
        size += len(request.sample_indices)
    if current:
        chunks.append(current)
    return chunks


# ---------------------------------------------------------------------------- manifest


def _check_compatible(store: RunStore, plan: RunPlan) -> dict[str, Any]:
    if not (store.path / "manifest.json").exists():
        return {}
    old = store.read_manifest()
    stored = old.get("identity")
    new = identity(plan.model, plan.config.task, plan.config.limit, plan.sampling, plan.suffix, plan.engine_options)
    if stored is not None and stored != new:
        diffs = [f"{key}: stored {stored.get(key)!r}, now {new.get(key)!r}" for key in new if stored.get(key) != new.get(key)]
        raise RunError(
            f"run folder {store.path} holds a run with other settings ({'; '.join(diffs)}); "
            "use another --run-id or --out to start a separate run"
        )
    return old


def _manifest(plan: RunPlan, old: dict[str, Any], template: str) -> dict[str, Any]:
    task_spec = task_lib.load_spec(plan.config.task)
    public_options = {k: v for k, v in plan.engine_options.items() if k != "api_key"}
    n = max(plan.sampling.n, int(old.get("sampling", {}).get("n", 0) or 0))
    return {
        "run_id": plan.run_id,
        "task": {
            "name": plan.config.task, "rows": plan.task_rows, "problems": len(plan.problems), "content_hash": task_spec.content_hash,
            "subset_hash": task_lib.content_hash(plan.problems), "limit": plan.config.limit,
            "data_dir": str(plan.config.data_dir) if plan.config.data_dir else None,
        },
        "model": {"name": plan.model.name, "path": plan.model.path, "preset": plan.model.preset,
                  "revision": plan.engine_options.get("revision")},
        "engine": {"name": plan.model.engine, "options": public_options},
        "sampling": {**plan.sampling.to_dict(), "n": n},
        "seeding": "one request per (problem, sample) with seed sample_seed(run seed, problem id, sample index)",
        "prompt": {"suffix": plan.suffix, "template_hash": template, "chat_template": True},
        "identity": identity(plan.model, plan.config.task, plan.config.limit, plan.sampling, plan.suffix,
                             plan.engine_options),
        "versions": versions(),
        "host": host(plan.model.engine, list(public_options.get("endpoints") or [])),
        "started_at": old.get("started_at") or time.time(),
        "resumed_at": [*old.get("resumed_at", []), time.time()] if old else [],
        "finished_at": None,
        "stages": old.get("stages", {}),
    }


# ---------------------------------------------------------------------------- generation


def _tokenizer_source(plan: RunPlan) -> str:
    return str(plan.engine_options.get("tokenizer") or plan.model.path)


def _progress_columns() -> list[TextColumn]:
    return [TextColumn("[cyan]{task.fields[tokens_rate]}")]


def generate(plan: RunPlan, *, engine: Any = None, console: Console | None = None) -> RunOutcome:
    """Generate every missing sample of ``plan`` into its run folder; never loses a stored sample.

    ``engine`` lets a caller reuse an engine it already built (benchmarks); otherwise one
    is constructed from the plan and closed at the end.
    """
    console = console or Console(stderr=True)
    store = RunStore.create(plan.path)
    try:
        old = _check_compatible(store, plan)
        # A caller-provided engine already holds the model's tokenizer; otherwise load it
        # (before the engine, so a bad prompt setup fails before a slow model load).
        tokenizer = getattr(engine, "tokenizer", None) if engine is not None else None
        if tokenizer is None:
            tokenizer = load_tokenizer(_tokenizer_source(plan), plan.engine_options.get("revision"))
        prompts = {p.id: render(tokenizer, p.question, plan.suffix) for p in plan.problems}
        store.write_manifest(_manifest(plan, old, template_hash(tokenizer)))
        store.write_problems(plan.problems)
        finished = store.finished()
    finally:
        # vLLM forks workers; they must not inherit the lock (a killed run would stay locked).
        store.unlock()
    k = plan.sampling.n
    expected = k * len(plan.problems)
    requests = pending_requests(plan.problems, prompts, finished, k, plan.sampling.seed)
    have = expected - sum(len(r.sample_indices) for r in requests)
    if not requests:
        with store:
            store.set_stage("generate", "done", samples=have)
        return RunOutcome(plan.path, "done", 0, have, expected, "nothing to generate: all samples are stored")
    console.print(f"[bold]run[/] {plan.path}: {have}/{expected} samples stored, generating {expected - have}")
    own_engine = engine is None
    generated = 0
    state, message = "done", ""
    try:
        if own_engine:
            engine = engine_class(plan.model.engine)(plan.model.path, options=dict(plan.engine_options))
        store.lock()
        effective = getattr(engine, "options", None)
        if isinstance(effective, dict):  # the options after the engine's own defaults
            engine_info = {**store.read_manifest().get("engine", {}),
                           "effective_options": {k: v for k, v in effective.items() if k != "api_key"}}
            store.update_manifest(engine=engine_info)
        store.set_stage("generate", "running", expected=expected)
        chunks = chunk_requests(requests, plan.config.chunk_size or DEFAULT_CHUNK_SAMPLES)
        generated = _loop(engine, chunks, plan.sampling, store, have, expected)
        store.update_manifest(finished_at=time.time())
        store.set_stage("generate", "done", samples=have + generated)
    except KeyboardInterrupt:
        state, message = "interrupted", "interrupted"
    except EngineOutOfMemory as exc:
        state, message = "failed", f"out of memory: {exc}"
    except EngineError as exc:
        state, message = "failed", str(exc)
    finally:
        if own_engine and engine is not None:
            engine.close()
        if state != "done":
            stored = len(store.finished())
            try:
                store.lock()
                store.set_stage("generate", state, error=message, samples=stored)
            except Exception:  # noqa: BLE001 - the samples are what matters
                pass
        store.unlock()
    stored = len(store.finished())
    if state != "done":
        message = (f"{message}; {stored}/{expected} samples are kept in {plan.path} "
                   "(run the same command again to resume)")
    return RunOutcome(plan.path, state, generated, stored, expected, message)


def _loop(engine: Any, chunks: list[list[GenerationRequest]], sampling: SamplingConfig, store: RunStore,
          have: int, expected: int) -> int:
    generated = 0
    tokens = stored_tokens = 0
    progress = make_progress("completions", extra=_progress_columns())
    t0 = time.perf_counter()
    with progress:
        bar = progress.add_task("generate", total=expected, completed=have, tokens_rate="- tok/s")

        def live(completions: int, new_tokens: int) -> None:
            nonlocal tokens
            tokens += new_tokens
            rate = tokens / max(time.perf_counter() - t0, 1e-9)
            progress.update(bar, advance=completions, tokens_rate=f"{rate:,.0f} tok/s")

        if hasattr(engine, "on_progress"):
            engine.on_progress = live
        try:
            for chunk in chunks:
                for result in engine.generate(chunk, sampling):
                    store.append_samples(result.completions, result.timing)
                    generated += len(result.completions)
                    stored_tokens += result.timing.generated_tokens
                    tokens = stored_tokens  # exact once stored; the live count is an estimate
                    rate = tokens / max(time.perf_counter() - t0, 1e-9)
                    progress.update(bar, completed=have + generated, tokens_rate=f"{rate:,.0f} tok/s")
        finally:
            if hasattr(engine, "on_progress"):
                engine.on_progress = None
    return generated
