"""The engine protocol: every backend turns prompts into ``Completion`` records plus batch timing.

The runner hands an engine a list of ``GenerationRequest`` (one per problem, with the
sample indices still missing and one seed per sample) and stores each ``BatchResult``
the moment the engine yields it, so the unit of resume is the engine's batch. Engines
know nothing about run folders, grading or tasks.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from m1eval.records import PREFIX_GRID, BatchTiming, Completion, SamplingConfig

# Engines whose requests finish one by one (openai, vllm) yield what finished at least this
# often (seconds), so an interrupt or crash loses only the requests still running.
FLUSH_SECONDS = 2.0


class EngineError(Exception):
    """The engine cannot start or failed; the message says what to change."""


class EngineOutOfMemory(EngineError):
    """The engine ran out of (GPU or host) memory; fewer concurrent sequences may help."""


@dataclass(frozen=True)
class GenerationRequest:
    """All samples still to draw for one problem; ``seeds[i]`` goes with ``sample_indices[i]``."""

    problem_id: str
    prompt: str
    sample_indices: list[int]
    seeds: list[int]
    prompt_token_ids: list[int] | None = None

    def __post_init__(self) -> None:
        if len(self.sample_indices) != len(self.seeds):
            raise ValueError(f"{self.problem_id}: {len(self.sample_indices)} sample indices but {len(self.seeds)} seeds")


@dataclass
class BatchResult:
    """What an engine yields: finished completions of one batch and that batch's timing."""

    completions: list[Completion]
    timing: BatchTiming
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    name: str

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """Yield batches as they finish; every requested (problem, sample) appears exactly once."""
        ...

    def close(self) -> None:
        """Free the model and any worker processes."""
        ...


@dataclass(frozen=True)
class TimedGeneration:
    """One timed greedy batch for throughput profiles: EOS ignored, exactly gen_len tokens a row."""

    batch_size: int
    prompt_len: int
    gen_len: int
    wall_seconds: float
    generated_tokens: int
    prefill_seconds: float | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.wall_seconds if self.wall_seconds > 0 else float("nan")


@runtime_checkable
class ThroughputEngine(Protocol):
    """Engines that `m1eval bench` can profile (vllm, hf, m1; not remote servers)."""

    name: str

    def timed_greedy(self, prompt_token_ids: list[list[int]], gen_len: int) -> TimedGeneration:
        """Greedy-decode every row for exactly ``gen_len`` tokens (EOS ignored) and time it."""
        ...


def prefix_chars(decode, token_ids: Sequence[int], grid: Sequence[int] = PREFIX_GRID) -> dict[str, int]:
    """Characters of decoded text after the first L tokens, for each L in ``grid`` below the length.

    ``decode`` is ``tokenizer.decode``-like (list of ids -> str). The full length is always
    included so a cut at or beyond it keeps the whole text.
    """
    out: dict[str, int] = {}
    n = len(token_ids)
    for budget in grid:
        if budget >= n:
            break
        out[str(budget)] = len(decode(list(token_ids[:budget])))
    out[str(n)] = len(decode(list(token_ids)))
    return out


def batch_timing(
    batch_id: str, engine: str, completions: Sequence[Completion], wall_seconds: float, started_at: float | None
) -> BatchTiming:
    """The timing record of one finished batch; token totals come from its completions."""
    return BatchTiming(
        batch_id=batch_id,
        engine=engine,
        batch_size=len(completions),
        wall_seconds=wall_seconds,
        generated_tokens=sum(c.completion_tokens for c in completions),
        prompt_tokens=sum(c.prompt_tokens for c in completions),
        started_at=started_at,
    )


@dataclass(frozen=True)
class OptionSpec:
    """The type (and bounds) one engine option accepts; checked before any run folder is touched.

    ``kind`` is one of int, float, bool, str, list (of strings, or one comma-separated
    string), dict. ``minimum`` bounds numbers, ``above`` makes that bound strict.
    """

    kind: str
    minimum: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def problem(self, value: Any) -> str | None:
        """None when ``value`` fits, else what was expected (for a one-line error)."""
        if value is None:
            return None if self.nullable else f"expected {self.describe()}, got null"
        if self.kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "str":
            ok = isinstance(value, str) and (not self.choices or value in self.choices)
        elif self.kind == "list":
            ok = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        elif self.kind == "dict":
            ok = isinstance(value, dict)
        else:  # pragma: no cover - a spec typo
            raise ValueError(f"unknown option kind {self.kind!r}")
        if ok and self.minimum is not None and (value <= self.minimum if self.above else value < self.minimum):
            ok = False
        return None if ok else f"expected {self.describe()}, got {value!r}"

    def describe(self) -> str:
        if self.choices:
            return "one of " + "|".join(self.choices)
        text = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "list": "a list of strings", "dict": "a JSON object"}[self.kind]
        if self.minimum is not None:
            text += f" {'>' if self.above else '>='} {self.minimum:g}"
        return text


def checked_options(engine: str, options: dict[str, Any] | None, known: Sequence[str],
                    specs: dict[str, OptionSpec] | None = None) -> dict[str, Any]:
    """A copy of ``options``; an unknown key or a value of the wrong type is an error naming both.

    ``specs`` gives the type of each option that has one; options without a spec take any value.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise EngineError(f"{engine}: unknown engine option(s) {unknown}; known: {', '.join(known)}")
    for key, value in options.items():
        spec = (specs or {}).get(key)
        problem = spec.problem(value) if spec is not None else None
        if problem is not None:
            raise EngineError(f"{engine}: engine option {key}: {problem}")
    return options


def validate_options(engine: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``options`` against the engine's declared names and types without building it.

    Engine modules import their heavy libraries only inside the engine, so importing the
    class here is cheap; an engine that declares no ``option_names`` is not checked.
    """
    cls = engine_class(engine)
    names = getattr(cls, "option_names", None)
    if names is None:
        return dict(options or {})
    return checked_options(engine, options, names, getattr(cls, "option_specs", None))


# name -> "module:Class"; engines import their heavy libraries only when constructed.
ENGINES: dict[str, str] = {
    "vllm": "m1eval.engines.vllm:VLLMEngine",
    "hf": "m1eval.engines.hf:HFEngine",
    "openai": "m1eval.engines.openai:OpenAIEngine",
    "m1": "m1eval.engines.m1:M1Engine",
}


def engine_class(name: str) -> type:
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}")
    module_name, class_name = ENGINES[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
