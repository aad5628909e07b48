"""The engine contract's shared chores (engines/base.py) and the registry (engines/__init__.py)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from m1eval.engines import ENGINES, engine_class, validate_options
from m1eval.engines.base import (
    BatchClock,
    BatchResult,
    Engine,
    EngineBase,
    EngineError,
    EngineOutOfMemory,
    GenerationRequest,
    batch_result,
    is_out_of_memory,
)
from m1eval.records import Completion, SamplingConfig

REPO = Path(__file__).resolve().parents[1]


class Echo(EngineBase):
    name = "echo"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        self.calls.append(sum(len(r.sample_indices) for r in requests))
        completions = [
            Completion(r.problem_id, i, s, "x", 1, 2, "stop", "")
            for r in requests
            for i, s in zip(r.sample_indices, r.seeds)
        ]
        yield batch_result(self.name, completions, BatchClock())


def _request(pid: str, n: int) -> GenerationRequest:
    return GenerationRequest(pid, "q", list(range(n)), list(range(100, 100 + n)))


def test_every_registered_engine_keeps_the_contract() -> None:
    for name in ENGINES:
        cls = engine_class(name)
        assert issubclass(cls, EngineBase), name
        assert cls.option_specs, name  # `m1eval engines` lists them, `-o` is checked against them
    assert isinstance(Echo(), Engine)
    with pytest.raises(EngineError, match="unknown engine 'nope'"):
        engine_class("nope")
    with pytest.raises(EngineError, match="unknown engine option"):
        validate_options("hf", {"bogus": 1})


def test_generate_pending_chunks_whole_requests_and_batches_get_one_id_each() -> None:
    engine = Echo()
    results = list(
        engine.generate_pending(
            iter([_request("a", 3), _request("b", 3), _request("c", 1)]),
            SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=16),
            samples_per_chunk=4,
        )
    )
    assert engine.calls == [3, 4]  # a | b + c: requests are never split
    assert [len(r.completions) for r in results] == [3, 4]
    for result in results:
        ids = {c.batch_id for c in result.completions}
        assert ids == {result.timing.batch_id} and len(result.timing.batch_id) == 12
        assert result.timing.generated_tokens == 2 * len(result.completions) and result.timing.engine == "echo"
    assert results[0].timing.batch_id != results[1].timing.batch_id


def test_batch_clock_keeps_a_stopped_wall_time() -> None:
    clock = BatchClock(t0=0.0)
    clock.wall = 1.5
    assert batch_result("e", [], clock).timing.wall_seconds == 1.5


@pytest.mark.parametrize(
    "exc, oom",
    [
        (EngineOutOfMemory("x"), True),
        (MemoryError(), True),
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA"), True),
        (ValueError("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`"), True),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (ValueError("bad prompt"), False),
        (EngineError("unknown option"), False),
    ],
)
def test_one_place_recognises_out_of_memory(exc: BaseException, oom: bool) -> None:
    assert is_out_of_memory(exc) is oom


def test_grading_imports_nothing_of_m1eval_but_records() -> None:
    """grading/ could be published on its own: run folders and progress bars are the stages' business."""
    for path in sorted((REPO / "m1eval" / "grading").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else ([a.name for a in node.names] if isinstance(node, ast.Import) else [])
            )
            for name in names:
                if name.startswith("m1eval"):
                    assert name == "m1eval.records" or name.startswith("m1eval.grading"), (path.name, name)
