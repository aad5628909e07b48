"""A stand-in engine that answers at once, for tests of the runner and the run folder (not of an engine).

``InstantEngine.on_build`` runs while the engine is built, where a real engine would load its
model: a test puts a second writer there, at exactly that moment, without any sleep. Each
engine's batches carry its own id (``e<n>-pid<pid>-b<i>``), so a test can tell whose timings a
``batches.jsonl`` holds. ``register`` makes it known under ``ENGINE`` (in a subprocess too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from m1eval.engines import ENGINES
from m1eval.engines.base import BatchResult, EngineBase, GenerationRequest
from m1eval.engines.options import OptionSpec
from m1eval.records import BatchTiming, Completion, SamplingConfig

ENGINE = "instant-helper"


class InstantEngine(EngineBase):
    """Answers every request at once with a fixed boxed answer."""

    name = ENGINE
    option_specs: ClassVar[dict[str, OptionSpec]] = {"tokenizer": OptionSpec("str")}
    on_build: ClassVar[Callable[[], Any] | None] = None
    built: ClassVar[int] = 0

    def __init__(self, model: str, *, options: dict | None = None) -> None:
        type(self).built += 1
        self.model = model
        self.tag = f"e{type(self).built}-pid{os.getpid()}"
        self.batches = 0
        if type(self).on_build is not None:
            type(self).on_build()

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        self.batches += 1
        batch = f"{self.tag}-b{self.batches}"
        completions = [
            Completion(r.problem_id, i, s, "so \\boxed{1}", len(r.prompt_token_ids or []), 3, "stop", batch)
            for r in requests
            for i, s in zip(r.sample_indices, r.seeds)
        ]
        yield BatchResult(completions, BatchTiming(batch, self.name, len(completions), 0.01, 3 * len(completions)))

    def close(self) -> None:
        pass


def register() -> None:
    ENGINES[ENGINE] = f"{__name__}:InstantEngine"
    InstantEngine.on_build = None
    InstantEngine.built = 0
