"""Sequential scaling: completions cut at L tokens and graded by the real grader.

One problem (gold 1), four samples whose answers sit at known places:

- s0: 40 chars of reasoning then \\boxed{1}; 100 tokens; the first 64 tokens are 32 chars,
  so any cut below 100 tokens removes the answer;
- s1: \\boxed{1} first, then reasoning; 100 tokens; the answer survives every cut >= 16;
- s2: \\boxed{1} alone in 20 tokens; a cut at 16 leaves 5 chars (no answer);
- s3: like s0 but a wrong answer (\\boxed{7}).

pass@1 by L: 16 -> 1/4 (s1), 32 -> 2/4 (s1, s2), 64 -> 2/4, 100 (uncut) -> 3/4.
No-answer share: 16 -> 3/4 (s0, s2, s3), 32 and 64 -> 2/4 (s0, s3), 100 -> 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.budget_runs import write_run

from m1eval.analysis.budget import BudgetError
from m1eval.analysis.budget.sequential import cut_completion, default_lengths, sequential_curve
from m1eval.analysis.intervals import ProblemSet, interval_curve
from m1eval.grading import Grader
from m1eval.records import Completion
from m1eval.rundir.rundata import load_run
from m1eval.rundir.synthetic import make_synthetic_run
from m1eval.throughput.profile import Measurement, ThroughputProfile

TEXTS = [["x" * 40 + "\\boxed{1}", "\\boxed{1}" + "z" * 40, "\\boxed{1}", "y" * 40 + "\\boxed{7}"]]
PREFIX = [
    [
        {"16": 8, "32": 16, "64": 32, "100": 49},
        {"16": 12, "32": 20, "64": 35, "100": 49},
        {"16": 5, "20": 9},
        {"16": 8, "32": 16, "64": 32, "100": 49},
    ]
]
TOKENS = [[100, 100, 20, 100]]


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=1) as g:
        yield g


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = write_run(
        tmp_path_factory.mktemp("seq"),
        "cutter",
        [[True, True, True, False]],
        clusters=[[0, 0, 0, 1]],
        texts=TEXTS,
        prefix_chars=PREFIX,
        completion_tokens=TOKENS,
    )
    return load_run(path)


def test_cut_keeps_exactly_the_first_l_tokens_of_text():
    c = Completion("p0", 0, 0, "abcdefghij", 5, 10, "stop", "b", prefix_chars={"4": 3, "8": 7, "10": 10})
    cut = cut_completion(c, 8)
    assert (cut.text, cut.completion_tokens, cut.finish_reason) == ("abcdefg", 8, "length")
    assert cut_completion(c, 10) is c and cut_completion(c, 64) is c
    with pytest.raises(BudgetError, match=r"p0#0 has 10 tokens but no prefix_chars entry for L=5"):
        cut_completion(c, 5)


def test_default_lengths_are_recorded_budgets_plus_the_longest(run):
    from m1eval.rundir.store import RunStore

    completions, _ = RunStore(run.path).read_samples()
    assert default_lengths(completions) == [16, 32, 64, 100]


def test_accuracy_and_no_answer_by_length(run, grader):
    prof = ThroughputProfile(
        model="cutter",
        engine="fake",
        measurements=[
            Measurement("length", 8, 4, 100, wall_seconds=1.0, generated_tokens=800),
            Measurement("length", 8, 4, 200, wall_seconds=3.0, generated_tokens=1600),
        ],
    )
    curve = sequential_curve(run, grader=grader, profile=prof, sign_flips=200)
    assert curve.lengths == [16, 32, 64, 100]
    assert curve.accuracy.tolist() == pytest.approx([0.25, 0.5, 0.5, 0.75])
    assert curve.no_answer.tolist() == pytest.approx([0.75, 0.5, 0.5, 0.0])
    assert curve.seconds.tolist() == pytest.approx([0.16, 0.32, 0.64, 1.0])
    assert curve.batch_size == 8
    assert all(lo <= a <= hi for lo, a, hi in zip(curve.low, curve.accuracy, curve.high))
    frame = curve.to_frame()
    assert list(frame["max_tokens"]) == [16, 32, 64, 100]


def test_explicit_lengths_and_missing_offsets_are_reported(run, grader, tmp_path):
    curve = sequential_curve(run, grader=grader, lengths=[32, 1000], sign_flips=100)
    assert curve.accuracy.tolist() == pytest.approx([0.5, 0.75])
    assert curve.seconds is None
    with pytest.raises(BudgetError, match="no prefix_chars entry for L=48"):
        sequential_curve(run, grader=grader, lengths=[48], sign_flips=100)
    bare = load_run(write_run(tmp_path, "bare", [[True, False]]))
    with pytest.raises(BudgetError, match="carry no prefix_chars"):
        sequential_curve(bare, grader=grader, sign_flips=100)


class CountingGrader(Grader):
    """The real grader, recording every text it is given: (problem, sample, tokens of the text)."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.texts: list[tuple[str, int, int]] = []

    def grade_many(self, items, progress=None):
        items = list(items)
        self.texts += [(c.problem_id, c.sample_index, c.completion_tokens) for _, cs in items for c in cs]
        return super().grade_many(items, progress)


def every_sample_at_every_length(run, lengths, grader) -> dict[str, list[float]]:
    """Reference: at each L, cut every sample and grade them all (one grading call per L), then pass@1."""
    problems = {p.id: p for p in run.problems}
    by_problem: dict[str, list[Completion]] = {}
    for c in run.graded_completions():
        by_problem.setdefault(c.problem_id, []).append(c)
    out: dict[str, list[float]] = {"accuracy": [], "low": [], "high": [], "no_answer": []}
    for L in lengths:
        grades = grader.grade_many(
            [(problems[pid], [cut_completion(c, L) for c in cs]) for pid, cs in by_problem.items()]
        )
        frame = pd.DataFrame(
            {
                "problem_id": [g.problem_id for g in grades],
                "correct": [bool(g.correct) for g in grades],
                "cluster": pd.array([g.cluster for g in grades], dtype="Int64"),
                "answer": [g.answer for g in grades],
            }
        )
        ci = interval_curve(ProblemSet.from_frame(frame), [1], "pass", sign_flips=100)
        out["accuracy"].append(float(ci.point[0]))
        out["low"].append(float(ci.low[0]))
        out["high"].append(float(ci.high[0]))
        out["no_answer"].append(float(frame["answer"].isna().mean()))
    return out


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])  # a chunk per problem; the whole run in one chunk
def test_each_distinct_text_is_graded_once_for_the_curve_of_cutting_every_sample(tmp_path, chunk_bytes):
    """A sample shorter than L is graded whole once for all such L (its cut there is itself), and the
    curve is exactly the one of cutting and grading every sample at every length."""
    run = load_run(
        make_synthetic_run(tmp_path, n_problems=6, n_samples=4, seed=9, max_tokens=2048, tokens_per_sample=900)
    )
    with CountingGrader(workers=1) as grader:
        curve = sequential_curve(run, grader=grader, sign_flips=100, chunk_bytes=chunk_bytes)
    tokens = run.frame["completion_tokens"].to_numpy()
    distinct = sum(int((tokens > L).sum()) for L in curve.lengths) + len(tokens)  # cuts, and each sample whole
    assert distinct < len(tokens) * len(curve.lengths)  # the premise: samples shorter than some L
    assert len(grader.texts) == len(set(grader.texts)) == distinct
    with Grader(workers=1) as plain:
        want = every_sample_at_every_length(run, curve.lengths, plain)
    for name, values in want.items():
        assert np.array_equal(getattr(curve, name), np.array(values)), name
