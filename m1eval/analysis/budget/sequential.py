"""Sequential scaling: accuracy against the maximum generation length L.

Instead of generating again with ``max_tokens=L`` for every L, each stored completion is
cut after its first L tokens and the cut text is graded. The cut uses
``Completion.prefix_chars`` (characters decoded from the first L tokens, recorded by the
engine at generation time), so no tokenizer is needed here and the cut falls exactly on
a token boundary. This equals re-generating with a smaller budget for any engine whose
sampling of token t does not depend on the budget (true for the engines m1eval drives),
and an answer the cut removes is no answer, exactly as it would be at that budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import pandas as pd

from m1eval.analysis.budget.clock import BudgetError
from m1eval.analysis.intervals import ProblemSet, interval_curve
from m1eval.records import PREFIX_GRID, Completion, Grade, Problem
from m1eval.rundir.rundata import TEXT_CHUNK_BYTES, RunData
from m1eval.rundir.store import recorded_extraction
from m1eval.throughput.profile import ProfileError, ThroughputProfile


def cut_completion(completion: Completion, length: int) -> Completion:
    """The completion as a run with ``max_tokens=length`` would have produced it."""
    if length >= completion.completion_tokens:
        return completion
    chars = (completion.prefix_chars or {}).get(str(length))
    if chars is None:
        raise BudgetError(
            f"sample {completion.problem_id}#{completion.sample_index} has {completion.completion_tokens} tokens but no "
            f"prefix_chars entry for L={length}; its engine did not record token offsets at that budget"
        )
    return dataclasses.replace(
        completion, text=completion.text[:chars], completion_tokens=length, finish_reason="length"
    )


def default_lengths(completions: Sequence[Completion]) -> list[int]:
    """Budgets every completion recorded (powers of two of ``PREFIX_GRID``) plus the longest length."""
    return recorded_lengths([c.prefix_chars for c in completions], [c.completion_tokens for c in completions])


def recorded_lengths(prefix_chars: Sequence[dict[str, int] | None], tokens: Sequence[int]) -> list[int]:
    """``default_lengths`` from the two fields it reads (the metadata table holds them without the texts)."""
    if not len(tokens):
        return []
    grid = set(PREFIX_GRID)
    recorded = {int(k) for prefix in prefix_chars for k in (prefix or {}) if int(k) in grid}
    longest = int(max(tokens))
    return sorted({L for L in recorded if L < longest} | {longest})  # noqa: SIM300


@dataclass
class LengthCurve:
    """Mean pass@1 (avg over samples, then problems) with each completion cut at L tokens."""

    label: str
    task: str
    lengths: list[int]
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    no_answer: np.ndarray  # share of samples without an answer at L
    seconds: np.ndarray | None  # time to decode L tokens (profile's length sweep), if known
    batch_size: int | None = None
    model: str = ""  # the run's model (its colour in figures); ``label`` is unique among compared runs
    problems: int = 0  # problems the curve averages over

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "model": self.label,
                "task": self.task,
                "max_tokens": self.lengths,
                "accuracy": self.accuracy,
                "ci_low": self.low,
                "ci_high": self.high,
                "no_answer_rate": self.no_answer,
                "seconds": self.seconds if self.seconds is not None else np.nan,
            }
        )


def sequential_curve(
    run: RunData,
    *,
    lengths: Sequence[int] | None = None,
    profile: ThroughputProfile | None = None,
    grader=None,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
    label: str | None = None,
    on_step: Callable[[int, int], None] | None = None,
    chunk_bytes: int = TEXT_CHUNK_BYTES,
) -> LengthCurve:
    """Grade every graded sample of ``run`` cut at each L; price L from ``profile`` if given.

    The cut texts are graded as ``grade`` graded the whole ones: with the extraction policy the
    run recorded (``stages.grade.extraction``), and each problem's format, tolerance and meta. So
    at L >= the run's max tokens the curve equals the report's pass@1.

    The texts are streamed (``RunData.graded_chunks``): each chunk of whole problems is cut
    at every L and graded (each distinct text once, ``_grade_cuts``) before the next is read.
    ``on_step(done, total)`` is called with 0 first and after each chunk (for a progress
    bar: the caller draws it).
    """
    if run.lines is None:
        raise BudgetError(f"{run.path}: loaded without completion texts (with_text=False); they are needed here")
    graded = run.frame
    if not len(graded):
        raise BudgetError(f"{run.path}: no graded samples to cut")
    if all(not prefix for prefix in graded["prefix_chars"]):
        raise BudgetError(
            f"{run.path}: completions carry no prefix_chars (token offsets), so they cannot be cut at L tokens; "
            "generate with an m1eval engine that records them"
        )
    grid = (
        sorted(set(lengths))
        if lengths
        else recorded_lengths(graded["prefix_chars"].tolist(), graded["completion_tokens"].tolist())
    )
    if any(L < 1 for L in grid):
        raise BudgetError(f"lengths must be positive, got {grid}")
    problems = {p.id: p for p in run.problems}
    missing = sorted(set(graded["problem_id"]) - set(problems))
    if missing:
        raise BudgetError(f"{run.path}: problems.jsonl lacks {len(missing)} problem(s), e.g. {missing[:3]}")
    own_grader = grader is None
    if own_grader:
        from m1eval.grading import DEFAULT_POLICY, Grader

        # the run's own policy: a run graded lenient, cut and read boxed-only, would score 0 at every L
        grader = Grader(extraction=recorded_extraction(run.manifest) or DEFAULT_POLICY)
    # The texts are read a few whole problems at a time (each chunk graded at every L), so
    # memory follows the chunk, not the run; per L the problems keep their order.
    by_length = [_LengthGrades() for _ in grid]
    total = run.graded_chunk_count(chunk_bytes)
    try:
        if on_step is not None:
            on_step(0, total)
        for step, completions in enumerate(run.graded_chunks(chunk_bytes), start=1):
            by_problem: dict[str, list[Completion]] = {}
            for c in completions:
                by_problem.setdefault(c.problem_id, []).append(c)
            cut_grades = _grade_cuts(grader, problems, by_problem, grid)
            for L, at_length in zip(grid, by_length):
                for pid, cs in by_problem.items():
                    at_length.add(pid, [cut_grades[pid, _text_at(c, L)][c.sample_index] for c in cs])
            if on_step is not None:
                on_step(step, total)
    finally:
        if own_grader:
            grader.close()
    acc, low, high, no_answer = [], [], [], []
    for at_length in by_length:
        ci = interval_curve(at_length.problems(), [1], "pass", sign_flips=sign_flips, seed=seed, level=level)
        acc.append(float(ci.point[0]))
        low.append(float(ci.low[0]))
        high.append(float(ci.high[0]))
        no_answer.append(at_length.no_answer_rate())
    seconds = None
    if profile is not None:
        try:
            seconds = np.array([profile.seconds_for_length(L) for L in grid])
        except ProfileError as exc:
            raise BudgetError(str(exc)) from None
    return LengthCurve(
        label=label or run.model,
        task=run.task,
        lengths=grid,
        accuracy=np.array(acc),
        low=np.array(low),
        high=np.array(high),
        no_answer=np.array(no_answer),
        seconds=seconds,
        batch_size=profile.length_batch_size if profile is not None else None,
        model=run.model,
        problems=int(graded["problem_id"].nunique()),
    )


def _text_at(completion: Completion, length: int) -> int | None:
    """Which text of ``completion`` is graded at ``length``: its cut there, or None for the whole
    completion (``cut_completion`` returns it unchanged from its own length on)."""
    return length if completion.completion_tokens > length else None


def _grade_cuts(
    grader, problems: dict[str, Problem], by_problem: dict[str, list[Completion]], grid: Sequence[int]
) -> dict[tuple[str, int | None], dict[int, Grade]]:
    """Grades of every distinct text the lengths ``grid`` make of these completions, in one grading call.

    A completion is cut at each L below its length, and graded whole once for all the L that
    reach its length (the cut at such an L is the completion itself): keyed (problem id, L),
    with L None for the whole completions, then by sample index. One call for all lengths
    keeps the grading workers busy; grading each distinct text once saves the texts that
    are as long at several L.
    """
    items: list[tuple[str, int | None, list[Completion]]] = []
    for L in grid:  # L by L, as a completion without the offsets for a cut is reported
        for pid, cs in by_problem.items():
            cut = [cut_completion(c, L) for c in cs if _text_at(c, L) is not None]
            if cut:
                items.append((pid, L, cut))
    for pid, cs in by_problem.items():
        whole = [c for c in cs if _text_at(c, grid[-1]) is None]
        if whole:
            items.append((pid, None, whole))
    grades = iter(grader.grade_many([(problems[pid], cs) for pid, _, cs in items], progress=False))
    return {(pid, L): {g.sample_index: g for g in islice(grades, len(cs))} for pid, L, cs in items}


class _LengthGrades:
    """The grades of every sample at one length L, by problem in the order they came: what pass@1 at L reads."""

    def __init__(self) -> None:
        self.correct: dict[str, list[bool]] = {}
        self.answered: list[bool] = []

    def add(self, problem_id: str, grades: Sequence[Grade]) -> None:
        ordered = sorted(grades, key=lambda g: g.sample_index)
        self.correct.setdefault(problem_id, []).extend(bool(g.correct) for g in ordered)
        self.answered.extend(g.answer is not None for g in ordered)

    def problems(self) -> ProblemSet:
        """Samples for pass@1: correctness only (no classes, nothing votes)."""
        correct = [np.array(c, dtype=bool) for c in self.correct.values()]
        return ProblemSet(list(self.correct), [np.full(len(c), -1, dtype=np.int64) for c in correct], correct)

    def no_answer_rate(self) -> float:
        return float(np.mean(~np.array(self.answered, dtype=bool)))
