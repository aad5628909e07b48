"""load_run, summaries, every output format and the `m1eval report` verb on synthetic run folders."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from m1eval.analysis import report as R
from m1eval.cli.app import app
from m1eval.rundir.rundata import load_run
from m1eval.rundir.store import RunStore, StoreError
from m1eval.rundir.synthetic import make_synthetic_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    a = make_synthetic_run(root, model="fake-a", n_problems=12, n_samples=8, accuracy=0.3, seed=1)
    b = make_synthetic_run(root, model="fake-b", n_problems=12, n_samples=8, accuracy=0.7, seed=2)
    return root, a, b


def test_load_run_joins_samples_and_grades(runs):
    _, a, _ = runs
    run = load_run(a)
    assert (run.task, run.model, run.run_id, run.n) == ("aime25", "fake-a", "synthetic-s1", 8)
    assert len(run.frame) == 12 * 8 and run.ungraded == 0 and not run.missing_problems
    assert run.problem_ids == [p.id for p in run.problems]
    assert {"completion_tokens", "finish_reason", "correct", "cluster", "status"} <= set(run.frame.columns)
    assert "text" not in run.samples and "text" not in run.frame  # the texts stay on disk (graded_completions)
    grades = RunStore(a).read_grades().set_index(["problem_id", "sample_index"])
    merged = run.frame.set_index(["problem_id", "sample_index"])
    assert (merged["correct"] == grades.loc[merged.index, "correct"]).all()
    assert len(run.batches) == 6 and run.batches["wall_seconds"].gt(0).all()
    assert run.scores() is not None and len(run.scores()) == len(run.frame)


def test_graded_completions_are_the_stored_records(runs, tmp_path):
    """Sequential scaling reads texts through RunData, not the run folder: the same records, graded ones only."""
    _, a, _ = runs
    stored = RunStore(a).read_samples()[0]
    assert load_run(a).graded_completions() == stored
    with pytest.raises(ValueError, match="with_text=False"):
        load_run(a, with_text=False).graded_completions()
    path = make_synthetic_run(tmp_path, n_problems=2, n_samples=3, seed=5)
    store = RunStore(path)
    grades = store.read_grades()
    with store:
        from m1eval.records import Grade

        kept = grades[grades.sample_index != 1].to_dict("records")
        store.write_grades([Grade(**{k: (None if pd.isna(v) else v) for k, v in row.items()}) for row in kept])
    assert [c.key for c in load_run(path).graded_completions()] == [
        c.key for c in store.read_samples()[0] if c.sample_index != 1
    ]


def test_load_run_incomplete_and_ungraded(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=4, n_samples=6, seed=3)
    store = RunStore(path)
    grades = store.read_grades()
    # problem 0 keeps 4 graded samples, problem 3 none: n = 4 and problem 3 is reported missing
    keep = ~(((grades.problem_id == "aime25-0000") & (grades.sample_index >= 4)) | (grades.problem_id == "aime25-0003"))
    with store:
        from m1eval.records import Grade

        store.write_grades(
            [
                Grade(**{k: (None if pd.isna(v) else v) for k, v in row.items()})
                for row in grades[keep].to_dict("records")
            ]
        )
    run = load_run(path)
    assert run.n == 4
    assert run.missing_problems == ["aime25-0003"]
    assert run.ungraded == 2 + 6
    summary = R.summarize_run(run, sign_flips=50)
    assert summary.n_problems == 3 and summary.missing_problems == 1
    assert "missing" in R.render_report([summary], fmt="markdown")

    bare = make_synthetic_run(tmp_path, model="bare", n_problems=2, n_samples=2, graded=False)
    with pytest.raises(StoreError, match="m1eval grade"):
        load_run(bare)
    assert load_run(bare, require_grades=False).frame.empty


def test_summary_numbers(runs):
    _, a, _ = runs
    run = load_run(a)
    summary = R.summarize_run(run, sign_flips=200, seed=1)
    per_problem = run.frame.groupby("problem_id")["correct"].mean()
    assert summary.pass1 == pytest.approx(per_problem.mean())
    assert summary.pass1_low <= summary.pass1 <= summary.pass1_high
    assert list(summary.curves["pass"].ks) == [1, 2, 4, 8]
    assert set(summary.curves) == {"pass", "maj", "maj_first", "best", "wmaj"}
    assert summary.curves["maj"].point[0] == pytest.approx(summary.pass1)
    assert summary.no_answer_rate == pytest.approx(run.frame["answer"].isna().mean())
    assert summary.truncation_rate == pytest.approx((run.samples.finish_reason == "length").mean())
    assert summary.p95_tokens == pytest.approx(np.percentile(run.samples.completion_tokens, 95))
    every = R.summarize_run(run, sign_flips=0, every_k=True, metrics=("pass", "maj"))
    assert list(every.curves["maj"].ks) == list(range(1, 9)) and np.isnan(every.curves["maj"].low).all()


def test_render_every_format(runs):
    _, a, b = runs
    loaded = [load_run(a), load_run(b)]
    summaries = [R.summarize_run(r, sign_flips=100) for r in loaded]
    comparisons = R.compare_runs(loaded, sign_flips=100)
    assert [(c.metric, c.k) for c in comparisons] == [("pass", 1), ("pass", 8), ("maj", 8)]
    assert all(c.n_problems == 12 for c in comparisons)

    data = json.loads(R.render_report(summaries, comparisons, "json"))
    assert data["runs"][1]["model"] == "fake-b" and len(data["comparisons"]) == 3
    assert data["runs"][0]["curves"]["pass"]["ks"] == [1, 2, 4, 8]

    frame = pd.read_csv(io.StringIO(R.render_report(summaries, comparisons, "csv")))
    row = frame[(frame.model == "fake-a") & (frame.metric == "pass") & (frame.k == 1)]
    assert row.value.iloc[0] == pytest.approx(summaries[0].pass1)
    assert (frame.metric == "diff_maj").sum() == 1

    md = R.render_report(summaries, comparisons, "markdown")
    assert "| task | model |" in md and "maj@8" in md and sum(line.startswith("|---") for line in md.splitlines()) == 3

    tex = R.render_report(summaries, comparisons, "latex")
    assert tex.count(r"\begin{tabular}") == 3 and r"pass@1 \%" in tex and "fake-b/synthetic-s2" in tex

    table = R.render_report(summaries, comparisons, "table")
    assert "Paired comparison" in table and "fake-a" in table
    with pytest.raises(ValueError, match="format"):
        R.render_report(summaries, comparisons, "html")


def test_table_format_fits_the_width_it_is_given(runs):
    """A person's terminal gets a table at its width (cells fold), not a 200-column one that wraps."""
    _, a, b = runs
    loaded = [load_run(a), load_run(b)]
    summaries = [R.summarize_run(r, sign_flips=100) for r in loaded]
    comparisons = R.compare_runs(loaded, sign_flips=100)
    wide = R.render_report(summaries, comparisons, "table")
    narrow = R.render_report(summaries, comparisons, "table", width=80)
    table_lines = [line for line in narrow.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines and max(len(line) for line in table_lines) <= 80
    assert max(len(line) for line in wide.splitlines()) > 80  # the default is wider: the test can fail
    assert "Paired comparison" in narrow


def test_cli_report(runs):
    root, a, _b = runs
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(root), "--format", "json", "-B", "50", "--baseline", "fake-b"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["model"] for r in data["runs"]] == ["fake-a", "fake-b"]
    assert data["comparisons"][0]["b"] == "fake-b/synthetic-s2"

    single = runner.invoke(app, ["report", str(a), "-B", "0", "-f", "markdown"])
    assert single.exit_code == 0 and "Paired" not in single.stdout and "fake-a" in single.stdout

    missing = runner.invoke(app, ["report", os.path.join(root, "nope")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output
    bad = runner.invoke(app, ["report", str(root), "--baseline", "zzz"])
    assert bad.exit_code == 2 and "matches none" in bad.output


def test_cli_report_ci_target(runs):
    """--ci-target fixed: pass@k and avg@n only, with the narrower fixed-set interval; maj@k is refused."""
    _, a, _ = runs
    runner = CliRunner()
    pop = runner.invoke(app, ["report", str(a), "-f", "json", "-B", "50"])
    fixed = runner.invoke(app, ["report", str(a), "-f", "json", "-B", "50", "--ci-target", "fixed"])
    assert pop.exit_code == 0 and fixed.exit_code == 0, fixed.output
    p, f = json.loads(pop.stdout)["runs"][0], json.loads(fixed.stdout)["runs"][0]
    assert set(f["curves"]) == {"pass"} and "maj" in p["curves"]
    assert f["curves"]["pass"]["target"] == "fixed" and p["curves"]["pass"]["target"] == "population"
    assert f["pass1"] == pytest.approx(p["pass1"])
    assert f["pass1_low"] <= f["pass1"] <= f["pass1_high"]
    assert f["pass1_high"] - f["pass1_low"] < p["pass1_high"] - p["pass1_low"]
    md = runner.invoke(app, ["report", str(a), "-B", "50", "-f", "markdown", "--ci-target", "fixed"])
    assert md.exit_code == 0 and "fixed set" in md.stdout and "maj@" not in md.stdout
    bad = runner.invoke(app, ["report", str(a), "--ci-target", "sample"])
    assert bad.exit_code == 2 and "--ci-target" in bad.output
    with pytest.raises(ValueError, match="fixed-set interval exists for pass@k and avg@n only"):
        R.summarize_run(load_run(a, with_text=False), sign_flips=50, target="fixed", metrics=("pass", "maj"))
