"""Self-consistency gate over the five shared benchmarks."""

import itertools

import pytest

from m1eval.grading import extract_answer, is_equivalent
from m1eval.tasks.loader import load_task

TASKS = ("aime24", "aime25", "amc23", "math500", "olympiadbench")


@pytest.mark.parametrize("task", TASKS)
def test_every_gold_equals_itself(task, data_dir):
    problems = load_task(task, data_dir)
    bad = [
        (p.id, gold)
        for p in problems
        for gold in p.answers
        if not is_equivalent(gold, gold, answer_format=p.answer_format, meta=p.meta)
    ]
    assert not bad


def test_math500_gold_equals_boxed_answer_of_its_solution(data_dir):
    problems = load_task("math500", data_dir)
    bad = []
    for p in problems:
        boxed = extract_answer(p.meta["solution"])
        assert boxed is not None, p.id
        if not is_equivalent(p.answers[0], boxed, answer_format=p.answer_format, meta=p.meta):
            bad.append((p.id, p.answers[0], boxed))
    assert not bad


def test_golds_of_different_integer_problems_are_distinguished(data_dir):
    """The gate must be able to fail: distinct AIME golds are not equivalent to each other."""
    golds = sorted({p.answers[0] for p in load_task("aime25", data_dir)}, key=int)
    assert all(not is_equivalent(a, b) for a, b in itertools.pairwise(golds))
