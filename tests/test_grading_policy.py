"""Extraction policies: rules, order, the rule recorded per grade, the manifest and the report."""

import json

import pytest

from m1eval.grading import Grader, PolicyError, canonical_policy, parse_policy
from m1eval.grading.extract import extract
from m1eval.pipeline.stages import grade_run
from m1eval.records import Completion, Problem
from m1eval.rundir.store import RunStore


def _c(pid, i, text, finish="stop"):
    return Completion(pid, i, i, text, 5, 10, finish, "b0")


@pytest.mark.parametrize(
    "text, policy, answer, rule",
    [
        ("so \\boxed{4}", "boxed", "4", "boxed"),
        ("The final answer is 17.", "boxed", None, None),
        ("The final answer is 17.", "lenient", "17", "answer-phrase"),
        ("**Answer:** $\\frac{3}{4}$", "lenient", "\\frac{3}{4}", "answer-phrase"),
        ("the answer is 3. Then \\boxed{4}", "lenient", "4", "boxed"),
        ("We get\n\\[ x = 2 + 3 = 5 \\]\nDone", "lenient", "5", "last-math"),
        ("We get $$\\frac{1}{2}$$", "boxed,last-math", "\\frac{1}{2}", "last-math"),
        ("there are 3 cats and 12 dogs", "lenient", "12", "last-number"),
        ("there are 3 cats and 1,200 dogs.", "last-number", "1,200", "last-number"),
        ("<think>the answer is 5</think> no answer here", "lenient", None, None),
        ("<think>the answer is 5", "lenient", None, None),
        ("no box, the answer is 9", "last-number,answer-phrase", "9", "last-number"),
    ],
)
def test_rules_in_order(text, policy, answer, rule):
    found = extract(text, policy)
    assert (found.answer, found.rule) == (answer, rule)


def test_policy_strings():
    assert parse_policy("lenient") == ("boxed", "answer-phrase", "last-math", "last-number")
    assert canonical_policy(None) == "boxed"
    assert canonical_policy(" boxed , last-number ") == "boxed,last-number"
    with pytest.raises(PolicyError, match="unknown rule 'boxd'"):
        parse_policy("boxd")
    with pytest.raises(PolicyError, match="empty"):
        parse_policy("")


def test_grader_records_the_rule():
    problem = Problem("t", "p", "q", ["12"], "integer")
    completions = [
        _c("p", 0, "\\boxed{12}"),
        _c("p", 1, "So the answer is 12."),
        _c("p", 2, "it is 12"),
        _c("p", 3, "nothing"),
        _c("p", 4, "<think>12", "length"),
    ]
    with Grader(workers=1) as boxed:
        grades = boxed.grade(problem, completions)
    assert [g.extracted_by for g in grades] == ["boxed", None, None, None, None]
    assert [g.correct for g in grades] == [True, False, False, False, False]
    with Grader(workers=1, extraction="lenient") as lenient:
        grades = lenient.grade(problem, completions)
    assert [g.extracted_by for g in grades] == ["boxed", "answer-phrase", "last-number", None, None]
    assert [g.correct for g in grades] == [True, True, True, False, False]
    assert [g.status for g in grades][3:] == ["no_answer", "truncated"]


def _run(tmp_path):
    run = tmp_path / "run"
    store = RunStore.create(run, {"task": "t"})
    store.write_problems([Problem("t", "a", "q", ["5"], "integer")])
    store.append_samples([_c("a", 0, "\\boxed{5}"), _c("a", 1, "The answer is 5."), _c("a", 2, "hmm")])
    store.unlock()
    return run


def test_grade_run_records_policy_and_regrades_with_another(tmp_path):
    from m1eval.analysis.report import runs_frame, summarize_run
    from m1eval.rundir.rundata import load_run

    run = _run(tmp_path)
    frame = grade_run(run, workers=1)
    stage = json.loads((run / "manifest.json").read_text())["stages"]["grade"]
    assert stage["extraction"] == "boxed" and list(frame["correct"]) == [True, False, False]
    frame = grade_run(run, workers=1, extraction="lenient")
    stage = json.loads((run / "manifest.json").read_text())["stages"]["grade"]
    assert stage["extraction"] == "boxed,answer-phrase,last-math,last-number"
    assert stage["extracted_by"] == {"boxed": 1, "answer-phrase": 1}
    assert list(frame["correct"]) == [True, True, False]
    grade_run(run, workers=1)  # no --extraction: the recorded policy is kept
    assert json.loads((run / "manifest.json").read_text())["stages"]["grade"]["extraction"].startswith("boxed,")
    summary = summarize_run(load_run(run), sign_flips=50)
    assert summary.extracted_by == pytest.approx({"boxed": 1 / 3, "answer-phrase": 1 / 3, "none": 1 / 3})
    assert "answer-phrase 33.3" in runs_frame([summary]).iloc[0]["answer found by %"]


def test_old_grades_without_the_column_still_load(tmp_path):
    import pandas as pd

    from m1eval.rundir.rundata import load_run

    run = _run(tmp_path)
    grade_run(run, workers=1)
    frame = pd.read_parquet(run / "grades.parquet").drop(columns=["extracted_by"])
    frame.to_parquet(run / "grades.parquet", index=False)
    assert load_run(run).frame["extracted_by"].isna().all()


def test_grader_cache_round_trip():
    problem = Problem("t", "p", "q", ["x^2+2x+1"], "expression")
    completions = [_c("p", 0, "\\boxed{(x+1)^2}"), _c("p", 1, "\\boxed{x^2+1}")]
    with Grader(workers=1) as first:
        expected = first.grade(problem, completions)
        kept = json.loads(json.dumps(first.export_cache()))
    assert first.stats["pool_items"] >= 2
    with Grader(workers=1) as second:
        assert second.import_cache(kept) >= 2
        assert second.grade(problem, completions) == expected
        assert second.stats["pool_items"] == 0  # nothing recomputed


def test_preset_field_and_run_option():
    from m1eval.cli.run import resolve_extraction
    from m1eval.models.presets import PRESETS

    # the paper's presets grade boxed answers only; the small CPU demo model rarely boxes
    assert all(p.extraction == "boxed" for name, p in PRESETS.items() if name != "smollm2-135m")
    assert resolve_extraction(None, "m1") == "boxed"
    assert resolve_extraction(None, "smollm2-135m").startswith("boxed,answer-phrase,last-math,last-number")
    assert resolve_extraction("lenient", "m1").startswith("boxed,answer-phrase")
    import typer

    with pytest.raises(typer.BadParameter):
        resolve_extraction("bogus", None)


def test_no_grade_run_records_the_policy_for_a_later_grade(tmp_path):
    from m1eval.pipeline.stages import record_extraction

    run = _run(tmp_path)
    record_extraction(run, "boxed,answer-phrase", explicit=False)
    stage = json.loads((run / "manifest.json").read_text())["stages"]["grade"]
    assert stage == {**stage, "state": "pending", "extraction": "boxed,answer-phrase"}
    frame = grade_run(run, workers=1)  # uses the recorded policy
    assert list(frame["extracted_by"].fillna("none")) == ["boxed", "answer-phrase", "none"]
    record_extraction(run, "boxed", explicit=False)  # a preset default does not override a graded run
    assert json.loads((run / "manifest.json").read_text())["stages"]["grade"]["state"] == "done"
    record_extraction(run, "boxed", explicit=True)
    assert json.loads((run / "manifest.json").read_text())["stages"]["grade"]["extraction"] == "boxed"
