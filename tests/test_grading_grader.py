"""Grader: statuses, equivalence classes, pool timeouts, grade_run on a run folder, CLI verbs."""

import json

import pytest
from typer.testing import CliRunner

from m1eval.grading import GRADER_VERSION, Grader
from m1eval.pipeline.stages import grade_run
from m1eval.records import Completion, Problem
from m1eval.rundir.store import RunStore


def _c(pid, i, text, finish="stop"):
    return Completion(pid, i, i, text, 5, 50, finish, "b0")


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=2, timeout=5.0) as g:
        yield g


def test_statuses_and_classes(grader):
    problem = Problem("t", "p1", "q", ["\\frac{1}{2}"], "expression")
    texts = [
        "\\boxed{0.5}",  # 0 correct
        "\\boxed{\\dfrac{1}{2}}",  # 1 correct
        "\\boxed{\\frac{2}{4}}",  # 2 correct
        "\\boxed{3}",  # 3 wrong
        "\\boxed{\\sqrt{9}}",  # 4 wrong, same class as 3
        "no box",  # 5 no answer
        "<think>long",  # 6 truncated
        "\\boxed{x+1}",  # 7 wrong, own class
        "\\boxed{1+x}",  # 8 same class as 7
    ]
    finishes = ["stop"] * 6 + ["length", "stop", "stop"]
    grades = grader.grade(problem, [_c("p1", i, t, f) for i, (t, f) in enumerate(zip(texts, finishes))])
    assert [g.correct for g in grades] == [True, True, True, False, False, False, False, False, False]
    assert [g.status for g in grades][5:7] == ["no_answer", "truncated"]
    clusters = [g.cluster for g in grades]
    assert clusters[0] == clusters[1] == clusters[2] == 0
    assert clusters[3] == clusters[4] != clusters[0]
    assert clusters[5] is None and clusters[6] is None
    assert clusters[7] == clusters[8] not in (clusters[0], clusters[3])
    assert all(g.grader_version == GRADER_VERSION for g in grades)


def test_several_golds_and_multiple_answers(grader):
    problem = Problem("t", "p2", "q", ["2", "\\frac{4}{2}", "10"], "number", {"is_multiple_answer": False})
    grades = grader.grade(problem, [_c("p2", 0, "\\boxed{10}"), _c("p2", 1, "\\boxed{2.0}"), _c("p2", 2, "\\boxed{3}")])
    assert [g.correct for g in grades] == [True, True, False]
    multi = Problem("t", "p3", "q", ["$69$,$84$"], "number", {"is_multiple_answer": True})
    grades = grader.grade(multi, [_c("p3", 0, "\\boxed{84, 69}"), _c("p3", 1, "\\boxed{69}")])
    assert [g.correct for g in grades] == [True, False]


def test_unparsable_status(grader):
    problem = Problem("t", "p4", "q", ["x^2"], "expression")
    grades = grader.grade(problem, [_c("p4", 0, "\\boxed{x^{2}}"), _c("p4", 1, "\\boxed{\\frac{x}{}}^")])
    assert grades[0].correct and grades[0].status == "ok"
    assert not grades[1].correct and grades[1].status == "unparsable"


def test_timeout_kills_the_item_and_the_run_goes_on():
    problem = Problem("t", "p5", "q", ["\\frac{\\sin^2 x + \\cos^2 x}{1 + \\tan^2 x}"], "expression")
    completions = [_c("p5", 0, "\\boxed{\\cos^2 x}"), _c("p5", 1, "\\boxed{\\sin x\\cos x}"), _c("p5", 2, "\\boxed{7}")]
    with Grader(workers=1, timeout=0.001) as g:
        grades = g.grade(problem, completions)
    # extraction, normalisation and sympy share the per-item deadline: at 1 ms (almost)
    # nothing is decided in time, yet every completion gets a grade and the run goes on
    assert len(grades) == 3 and not any(g.correct for g in grades)
    assert grades[0].status == "timeout" and {g.status for g in grades} <= {"timeout", "ok"}
    with Grader(workers=1, timeout=10) as g:  # with time, the same item is decided
        assert g.grade(problem, completions)[0].correct


def test_grade_many_dedupes_pairs(grader):
    problem = Problem("t", "p6", "q", ["7"], "integer")
    completions = [_c("p6", i, "\\boxed{7}" if i % 2 else "\\boxed{007}") for i in range(64)]
    before = grader.stats["pairs"]
    grades = grader.grade_many([(problem, completions)], progress=False)
    assert all(g.correct for g in grades) and len({g.cluster for g in grades}) == 1
    assert grader.stats["pairs"] - before <= 2


def _make_run(tmp_path):
    run = tmp_path / "run"
    store = RunStore.create(run, {"task": "t"})
    problems = [Problem("t", "a", "q", ["5"], "integer"), Problem("t", "b", "q", ["(1,2]"], "interval")]
    store.write_problems(problems)
    store.append_samples(
        [
            _c("a", 0, "\\boxed{5}"),
            _c("a", 1, "\\boxed{6}"),
            _c("b", 0, "\\boxed{1 < x \\le 2}"),
            _c("b", 1, "cut", "length"),
        ]
    )
    store.unlock()
    return run


def test_grade_run_writes_parquet_and_manifest(tmp_path):
    run = _make_run(tmp_path)
    frame = grade_run(run, workers=1)
    assert list(frame["correct"]) == [True, False, True, False]
    assert list(frame["status"]) == ["ok", "ok", "ok", "truncated"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["grade"]["state"] == "done"
    assert manifest["stages"]["grade"]["grader_version"] == GRADER_VERSION
    assert RunStore(run).read_grades().shape[0] == 4


def test_cli_grade_and_check(tmp_path):
    from m1eval.cli.app import app

    runner = CliRunner()
    run = _make_run(tmp_path)
    result = runner.invoke(app, ["grade", str(run), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "2 correct" in result.output
    result = runner.invoke(app, ["check", "\\dfrac{1}{2}", "0.5"])
    assert result.exit_code == 0 and "EQUIVALENT" in result.output and "\\frac{1}{2}" in result.output
    result = runner.invoke(app, ["check", "(3,4]", "(3,4)"])
    assert result.exit_code == 1 and "NOT EQUIVALENT" in result.output
    result = runner.invoke(app, ["check", "4.2", "4.25", "--tolerance", "0.1"])
    assert result.exit_code == 0
    result = runner.invoke(app, ["grade", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such" in " ".join(result.output.split())
