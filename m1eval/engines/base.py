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

from m1eval.records import BatchTiming, Completion, SamplingConfig

# Token budgets at which each completion records how many characters it had produced
# (Completion.prefix_chars), for the sequential-scaling analysis.
PREFIX_GRID: tuple[int, ...] = tuple(2**i for i in range(4, 16)) + (32768, 65536, 131072)


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


def checked_options(engine: str, options: dict[str, Any] | None, known: Sequence[str]) -> dict[str, Any]:
    """A copy of ``options``; an unknown key is an error naming the engine and the known keys."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise EngineError(f"{engine}: unknown engine option(s) {unknown}; known: {', '.join(known)}")
    return options


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
