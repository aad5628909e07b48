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

import numpy as np
import pandas as pd

from m1eval.analysis.budget.clock import BudgetError
from m1eval.records import PREFIX_GRID, Completion
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
    and graded at every L before the next is read. ``on_step(done, total)`` is called with 0
    first and after each (chunk, length) step (for a progress bar: the caller draws it).
    """
    from m1eval.analysis.intervals import ProblemSet, interval_curve

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
    # memory follows the chunk, not the run; per L the chunks' grades keep the problems' order.
    per_length: list[list[pd.DataFrame]] = [[] for _ in grid]
    total = len(grid) * run.graded_chunk_count(chunk_bytes)
    step = 0
    try:
        if on_step is not None:
            on_step(0, total)
        for completions in run.graded_chunks(chunk_bytes):
            by_problem: dict[str, list[Completion]] = {}
            for c in completions:
                by_problem.setdefault(c.problem_id, []).append(c)
            for i, L in enumerate(grid):
                batch = [(problems[pid], [cut_completion(c, L) for c in cs]) for pid, cs in by_problem.items()]
                grades = grader.grade_many(batch, progress=False)
                per_length[i].append(
                    pd.DataFrame(
                        {
                            "problem_id": [g.problem_id for g in grades],
                            "correct": [bool(g.correct) for g in grades],
                            "cluster": pd.array([g.cluster for g in grades], dtype="Int64"),
                            "answer": [g.answer for g in grades],
                        }
                    )
                )
                step += 1
                if on_step is not None:
                    on_step(step, total)
    finally:
        if own_grader:
            grader.close()
    acc, low, high, no_answer = [], [], [], []
    for frames in per_length:
        frame = pd.concat(frames, ignore_index=True)
        ci = interval_curve(ProblemSet.from_frame(frame), [1], "pass", sign_flips=sign_flips, seed=seed, level=level)
        acc.append(float(ci.point[0]))
        low.append(float(ci.low[0]))
        high.append(float(ci.high[0]))
        no_answer.append(float(frame["answer"].isna().mean()))
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
