"""`report --by` (metrics per group of problems) and `report --per-problem` (issue 23, point 5)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from m1eval.analysis import report as R
from m1eval.analysis.breakdown import GroupError, group_summaries, problem_groups, run_on
from m1eval.analysis.per_problem import per_problem_frame, problem_table
from m1eval.cli.app import app
from m1eval.rundir.rundata import load_run
from m1eval.rundir.synthetic import make_synthetic_run

SUBJECTS = ["Algebra", "Geometry", "Number Theory"]


def _with_meta(path: Path, key: str = "subject") -> Path:
    """Give the synthetic run's problems MATH500-like meta: level 1..5 (as ints) and a subject."""
    lines = [json.loads(line) for line in (path / "problems.jsonl").read_text().splitlines()]
    for i, row in enumerate(lines):
        row["meta"] = {"level": 1 + i % 5, key: SUBJECTS[i % 3], "solution": "a long worked solution " * 5}
    (path / "problems.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("breakdown")
    a = _with_meta(make_synthetic_run(root, model="fake-a", n_problems=20, n_samples=8, accuracy=0.4, seed=1))
    b = _with_meta(make_synthetic_run(root, model="fake-b", n_problems=15, n_samples=4, accuracy=0.6, seed=2))
    return root, a, b


def test_groups_come_from_the_problem_meta_in_reading_order(runs):
    _, a, _ = runs
    run = load_run(a, with_text=False)
    levels = problem_groups(run, "level")
    assert list(levels) == ["1", "2", "3", "4", "5"] and all(len(ids) == 4 for ids in levels.values())
    assert list(problem_groups(run, "subject")) == SUBJECTS
    with pytest.raises(GroupError, match=r"no problem of task aime25 has meta key 'year' \(its keys: level, solution"):
        problem_groups(run, "year")


def test_subject_means_olympiadbenchs_subfield(tmp_path):
    run = load_run(_with_meta(make_synthetic_run(tmp_path, n_problems=6, n_samples=2, seed=4), key="subfield"))
    assert list(problem_groups(run, "subject")) == SUBJECTS
    assert {g.key for g in group_summaries(run, "subject", sign_flips=0)} == {"subfield"}


def test_each_group_is_summarised_on_its_own_problems(runs):
    _, a, _ = runs
    run = load_run(a, with_text=False)
    groups = group_summaries(run, "level", sign_flips=50)
    assert [g.group for g in groups] == ["1", "2", "3", "4", "5"]
    per_problem = run.frame.groupby("problem_id")["correct"].mean()
    for g, ids in zip(groups, problem_groups(run, "level").values()):
        s = g.summary
        assert s.n_problems == len(ids) == 4 and s.n == 8
        assert s.pass1 == pytest.approx(per_problem.loc[ids].mean())
        assert s.pass1_low <= s.pass1 <= s.pass1_high  # an interval of its own, on the group's problems
        assert set(s.curves) >= {"pass", "maj"} and list(s.curves["maj"].ks) == [1, 2, 4, 8]
        part = run.frame[run.frame["problem_id"].isin(ids)]
        assert s.truncation_rate == pytest.approx((part["finish_reason"] == "length").mean())
        assert s.mean_tokens == pytest.approx(part["completion_tokens"].mean())
    # the groups' problems add up to the run's, and a group is the run cut to them
    assert sum(g.summary.n_problems for g in groups) == len(run.problem_ids)
    assert run_on(run, ["aime25-0000"]).problem_ids == ["aime25-0000"]


def _invoke(*args):
    result = CliRunner().invoke(app, list(args))
    return result


def test_report_by_level_in_every_format(runs):
    root, *_ = runs
    md = _invoke("report", str(root), "--by", "level", "-f", "markdown", "--sign-flips", "50")
    assert md.exit_code == 0, md.output
    section = next(part for part in md.stdout.split("\n**") if part.startswith("By level"))
    rows = [line for line in section.splitlines() if line.startswith("| fake-")]
    assert len(rows) == 10  # five levels of each run
    assert "| model | run | level | problems | n | pass@1 % [95% CI] | k | pass@k % [95% CI] | maj@k % [95% CI] |" in (
        section
    )
    assert rows[0].startswith("| fake-a | synthetic-s1 | 1 | 4 | 8 | ")
    data = json.loads(_invoke("report", str(root), "--by", "level", "-f", "json", "--sign-flips", "50").stdout)
    assert [(g["model"], g["group"]) for g in data["groups"]][:2] == [("fake-a", "1"), ("fake-a", "2")]
    assert all(g["by"] == "level" and g["curves"]["pass"]["ci_low"][0] is not None for g in data["groups"])
    csv = _invoke("report", str(root), "--by", "subject", "-f", "csv", "--sign-flips", "50").stdout
    frame = pd.read_csv(io.StringIO(csv))
    grouped = frame[frame["by"] == "subject"]
    assert sorted(grouped["group"].unique()) == SUBJECTS
    row = grouped[(grouped.model == "fake-b") & (grouped.group == "Geometry") & (grouped.metric == "avg@n")]
    assert row["problems"].iloc[0] == 5
    bad = _invoke("report", str(root), "--by", "year")
    assert (
        bad.exit_code == 2
        and "--by: fake-a/synthetic-s1: no problem of task aime25 has meta key 'year'" in " ".join(bad.output.split())
    )


def test_per_problem_rows_hold_every_problem_statistic(runs):
    _, a, _ = runs
    run = load_run(a, with_text=False)  # the metadata view only: no text is read
    table = problem_table(run)
    assert len(table) == 20 and table["problem_id"].tolist() == run.problem_ids
    assert [c for c in table if "@" in c] == [f"{m}@{k}" for m in ("pass", "maj") for k in (1, 2, 4, 8)]
    assert "solution" not in table and table["level"].tolist()[:5] == [1, 2, 3, 4, 5]  # short meta only
    for pid, rows in run.frame.groupby("problem_id"):
        row = table.set_index("problem_id").loc[pid]
        assert row["samples"] == len(rows) == 8
        assert row["pass@1"] == pytest.approx(rows["correct"].mean())
        assert row["maj@1"] == pytest.approx(rows["correct"].mean())
        assert row["pass@8"] == float(rows["correct"].any())
        answered = rows[rows["cluster"].notna()]
        counts = answered["cluster"].value_counts()
        assert row["clusters"] == len(counts)
        if len(counts):
            top = counts.max()
            assert row["majority_tie"] == bool((counts == top).sum() > 1)
            if not row["majority_tie"]:
                winner = counts.idxmax()
                assert row["majority_correct"] == bool(answered.loc[answered["cluster"] == winner, "correct"].any())
                assert row["majority_answer"] == answered.loc[answered["cluster"] == winner, "answer"].mode()[0]
        assert row["no_answer"] == pytest.approx(rows["answer"].isna().mean())
        assert row["truncated"] == pytest.approx((rows["finish_reason"] == "length").mean())
        assert row["mean_tokens"] == pytest.approx(rows["completion_tokens"].mean())


def test_report_per_problem_csv_and_json_and_the_one_line_scatter(runs):
    root, *_ = runs
    csv = _invoke("report", str(root), "--per-problem", "-f", "csv")
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert frame.groupby("label").size().to_dict() == {"fake-a": 20, "fake-b": 15}
    # fake-b drew 4 samples: it has no pass@8
    assert frame.loc[frame.label == "fake-b", "pass@8"].isna().all() and frame["pass@4"].notna().all()
    wide = frame.pivot(index="problem_id", columns="label", values="pass@1").dropna()  # the scatter's one line
    assert len(wide) == 15 and list(wide.columns) == ["fake-a", "fake-b"]
    data = json.loads(_invoke("report", str(root), "--per-problem", "-f", "json").stdout)
    assert len(data) == 35 and data[-1]["label"] == "fake-b" and data[-1]["pass@8"] is None
    assert set(data[0]) == set(frame.columns)
    same = per_problem_frame([load_run(p, with_text=False) for p in sorted(root.glob("*/*/*"))], ["fake-a", "fake-b"])
    assert np.allclose(same["pass@1"], frame["pass@1"])
    for bad in (["-f", "table"], ["-f", "csv", "--by", "level"]):
        result = _invoke("report", str(root), "--per-problem", *bad)
        assert result.exit_code == 2 and "--per-problem" in result.output


def test_report_by_group_renders_in_table_and_latex(runs):
    _, a, _ = runs
    run = load_run(a, with_text=False)
    summaries = [R.summarize_run(run, sign_flips=50)]
    groups = group_summaries(run, "subject", sign_flips=50)
    table = R.render_report(summaries, fmt="table", groups=groups)
    assert "By subject" in table and "Number Theory" in table
    tex = R.render_report(summaries, fmt="latex", groups=groups)
    assert tex.count(r"\begin{tabular}") == 3 and "Geometry" in tex
