"""The records passed between m1eval's stages.

Every stage reads and writes these and nothing else, so a run folder written by one
version of the generator can be graded, analysed and plotted by any later stage. The
records are plain dataclasses with ``to_dict``/``from_dict`` so they serialise to one
JSON line (samples) or one table row (grades) without a schema library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AnswerFormat = Literal["integer", "number", "expression", "interval", "tuple", "set", "text"]
ANSWER_FORMATS: tuple[str, ...] = ("integer", "number", "expression", "interval", "tuple", "set", "text")

FinishReason = Literal["stop", "length"]
GradeStatus = Literal["ok", "no_answer", "truncated", "timeout", "unparsable"]
GRADE_STATUSES: tuple[str, ...] = ("ok", "no_answer", "truncated", "timeout", "unparsable")

# Token budgets L at which each completion records how many characters it had produced
# (``Completion.prefix_chars``): engines record them, the sequential-scaling analysis cuts at them.
PREFIX_GRID: tuple[int, ...] = (*tuple(2**i for i in range(4, 16)), 32768, 65536, 131072)


class _Record:
    """Shared (de)serialisation: unknown keys are rejected so a typo in a stored file is loud."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):  # noqa: ANN206 - returns cls
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Problem(_Record):
    """One benchmark question; ``answers`` holds every accepted gold (usually one)."""

    task: str
    id: str
    question: str
    answers: list[str]
    answer_format: str = "expression"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingConfig(_Record):
    """How to sample one completion; ``seed`` is the run seed, not a per-sample one.

    How many samples per problem (k) is the run plan's (``runner.RunPlan.k``), not an
    engine's concern: every engine draws each requested (problem, sample) once. The
    manifest still stores k as ``sampling.n``; ``from_dict`` reads such a dict. The
    sampling defaults (a preset's, or m1eval's for other models) live in ``m1eval.models.presets``,
    so temperature, top_p and max_tokens have none here; ``top_k=-1`` means no cut.
    """

    temperature: float
    top_p: float
    max_tokens: int
    top_k: int = -1
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingConfig:
        # format 1 manifests may hold ``n`` (k, before it moved to the run plan)
        return super().from_dict({key: value for key, value in data.items() if key != "n"})


@dataclass
class Completion(_Record):
    """One line of ``samples.jsonl``: a single sampled completion of one problem.

    ``prefix_chars`` maps a token budget L (as a string key, JSON objects need string
    keys) to the number of characters of ``text`` produced by the first L tokens. It lets
    the sequential-scaling analysis cut a stored completion at L tokens without the
    tokenizer and without storing every token id.

    ``timings`` are the engine's per-request seconds (queue, prefill, decode; vLLM reports
    them); ``scores`` are verifier or reward-model scores (``score`` feeds weighted
    majority and best-of-n). Folders written before the two were separated hold both in
    one ``metrics`` field; ``from_dict`` splits it (every timing key ends in ``_seconds``).
    """

    problem_id: str
    sample_index: int
    seed: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    batch_id: str
    prefix_chars: dict[str, int] | None = None
    timings: dict[str, float] | None = None
    scores: dict[str, float] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem_id, self.sample_index)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        legacy = data.get("metrics")  # format 1 (rundir.store.FORMAT_VERSION)
        if isinstance(legacy, dict) and "timings" not in data and "scores" not in data:
            timings = {k: v for k, v in legacy.items() if str(k).endswith("_seconds")}
            scores = {k: v for k, v in legacy.items() if not str(k).endswith("_seconds")}
            data = {**data, "timings": timings or None, "scores": scores or None}
        return super().from_dict({key: value for key, value in data.items() if key != "metrics"})


@dataclass(frozen=True)
class BatchTiming(_Record):
    """Wall time of one engine batch, the raw material of every time-budget analysis."""

    batch_id: str
    engine: str
    batch_size: int
    wall_seconds: float
    generated_tokens: int
    prompt_tokens: int = 0
    started_at: float | None = None


@dataclass(frozen=True)
class Grade(_Record):
    """One row of ``grades.parquet``; ``cluster`` is the answer's equivalence class in its problem."""

    problem_id: str
    sample_index: int
    answer: str | None
    correct: bool
    status: str
    cluster: int | None
    grader_version: str
    # The extraction rule that found ``answer`` (m1eval.grading.extract.RULES); None when none did.
    extracted_by: str | None = None


class Progress(Protocol):
    """How a long library step (grading, a benchmark, a conversion) reports progress.

    The library never draws; whoever calls it passes an object with these methods
    (``m1eval.cli.progress.Bars`` draws bars) or nothing (``NO_PROGRESS``).
    """

    def stage(self, description: str, total: int | None) -> None:
        """A new step of ``total`` units begins (None: not known yet)."""

    def describe(self, description: str) -> None:
        """The current step's description changes."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current step are done."""

    def set_total(self, total: int) -> None:
        """The current step turned out to have ``total`` units."""


class _NoProgress:
    def stage(self, description: str, total: int | None) -> None:
        pass

    def describe(self, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
