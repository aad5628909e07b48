"""m1eval's ``lenient`` grading against 270 hand-labelled real SmolLM2 responses (tests/data).

Each case is a whole response from the committed example run, its problem's question and
gold, and a person's verdict (``correct``; ``why`` says what the response answered). The
Grader reads every response as ``m1eval grade`` does (question, finish reason and all),
and must agree with the label in both directions: positives accepted, negatives rejected.
The few cases where m1eval is known to disagree carry ``m1eval_disagrees`` with the reason;
they are reported, not asserted, so that fixing one is never a test failure.
"""

import json
from pathlib import Path

import pytest

from m1eval.grading import Grader
from m1eval.records import Completion, Problem

CASES = Path(__file__).parent / "data" / "grading_corpus_labels.json"


@pytest.fixture(scope="module")
def graded():
    cases = json.loads(CASES.read_text())["cases"]
    items = []
    for i, case in enumerate(cases):
        pid = f"case-{i}"
        problem = Problem("math500", pid, case["question"], [case["gold"]], case["answer_format"])
        completion = Completion(pid, 0, 0, case["text"], 0, 0, case["finish_reason"], "b0")
        items.append((problem, [completion]))
    with Grader(workers=2, extraction="lenient") as grader:
        grades = grader.grade_many(items)
    return cases, grades


def test_case_file_is_a_real_sample():
    cases = json.loads(CASES.read_text())["cases"]
    assert len(cases) >= 200
    assert len({(c["problem_id"], c["sample_index"]) for c in cases}) == len(cases)
    positives = sum(c["correct"] for c in cases)
    assert positives >= 20 and len(cases) - positives >= 150  # both directions are exercised
    assert all(c["why"].strip() for c in cases)


def test_every_labelled_positive_is_accepted(graded):
    cases, grades = graded
    missed = [
        (c["problem_id"], c["sample_index"], c["why"], g.answer, g.extracted_by)
        for c, g in zip(cases, grades)
        if c["correct"] and not g.correct and "m1eval_disagrees" not in c
    ]
    assert missed == []


def test_every_labelled_negative_is_rejected(graded):
    cases, grades = graded
    accepted = [
        (c["problem_id"], c["sample_index"], c["why"], g.answer, g.extracted_by)
        for c, g in zip(cases, grades)
        if not c["correct"] and g.correct and "m1eval_disagrees" not in c
    ]
    assert accepted == []


def test_known_disagreements_stay_few(graded):
    cases, grades = graded
    known = [c for c in cases if "m1eval_disagrees" in c]
    assert len(known) <= 10
    agreement = sum(g.correct == c["correct"] for c, g in zip(cases, grades)) / len(cases)
    assert agreement >= 0.96
