"""Issue 22.4: golds edited in a finished run's problems.jsonl are never graded or reported silently.

``grade`` refuses a run whose stored problems differ from the hashes its manifest recorded at
generation, naming the problems; with ``--allow-modified-problems`` it grades and the run is
marked modified, with the ids, in the report (table, CSV, JSON) and in figure legends. Runs made
before per-problem hashes are checked by their whole-subset hash; runs with no hash at all are
"unverified" and still graded.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.rundir.golds import PROBLEM_HASHES, check_problems, problem_hashes
from m1eval.rundir.store import RunStore
from m1eval.rundir.synthetic import make_synthetic_run

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_RUN = REPO / "results" / "math500" / "smollm2-135m" / "levels1-2-t0.7-p1-max320"


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _edit_answers(run: Path, ids: list[str], answer: str = "999") -> None:
    """Change the golds of ``ids`` in problems.jsonl, as a hand edit would (the manifest untouched)."""
    path = run / "problems.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row["id"] in ids:
            row["answers"] = [answer]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_synthetic_run(tmp_path / "results", model="fake-a", n_problems=6, n_samples=4, seed=3)


def test_edited_golds_are_refused_with_their_ids(run: Path) -> None:
    ids = [p.id for p in RunStore(run).read_problems()][1:3]
    before = (run / "grades.parquet").read_bytes()
    _edit_answers(run, ids)
    code, output = _invoke("grade", str(run), "-w", "1")
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, output
    assert all(pid in errors[0] for pid in ids) and "2 problem(s) changed" in errors[0]
    assert "--allow-modified-problems" in errors[0]
    assert (run / "grades.parquet").read_bytes() == before  # nothing graded against the edited golds


def test_allowed_edit_is_graded_and_marked_modified_everywhere(run: Path) -> None:
    ids = [p.id for p in RunStore(run).read_problems()][:2]
    _edit_answers(run, ids)
    code, output = _invoke("grade", str(run), "-w", "1", "--allow-modified-problems")
    assert code == 0, output
    assert "warning:" in output and all(pid in output for pid in ids) and "modified run" in output
    stage = json.loads((run / "manifest.json").read_text())["stages"]["grade"]
    assert stage["problems"]["state"] == "modified" and stage["problems"]["modified"] == ids

    code, table = _invoke("report", str(run), "--sign-flips", "50")
    assert code == 0, table
    assert "aime25 (MODIFIED)" in table and all(pid in table.split("Warnings:")[1] for pid in ids)

    code, csv = _invoke("report", str(run), "--sign-flips", "50", "--format", "csv")
    frame = pd.read_csv(io.StringIO(csv))
    assert set(frame["problems_check"]) == {"modified"}
    assert set(frame["modified_problems"]) == {";".join(ids)}

    code, text = _invoke("report", str(run), "--sign-flips", "50", "--format", "json")
    summary = json.loads(text)["runs"][0]
    assert summary["problems_check"] == "modified" and summary["modified_problems"] == ids

    from m1eval.analysis.budget import tables as bt
    from m1eval.analysis.curves import metric_curve
    from m1eval.figures import plots

    inputs = bt.load_inputs([run], [])
    assert inputs.labels == [f"fake-a [MODIFIED: {', '.join(ids)}]"]
    curve = metric_curve(inputs.runs[0], "pass", sign_flips=50, label=inputs.labels[0])
    figure = plots.figure_metric([curve])
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == inputs.labels
    assert any("MODIFIED" in w for w in inputs.warnings)  # `m1eval plot` prints these


def test_unedited_run_is_verified_and_unmarked(run: Path) -> None:
    code, output = _invoke("grade", str(run), "-w", "1")
    assert code == 0 and "warning" not in output and "unverified" not in output, output
    code, csv = _invoke("report", str(run), "--sign-flips", "50", "--format", "csv")
    assert set(pd.read_csv(io.StringIO(csv))["problems_check"]) == {"verified"}


def test_a_run_without_hashes_is_unverified_not_refused(run: Path) -> None:
    store = RunStore(run)
    manifest = store.read_manifest()
    del manifest["task"][PROBLEM_HASHES]
    with store:
        store.write_manifest(manifest)
    _edit_answers(run, [store.read_problems()[0].id])  # cannot be noticed: nothing to compare with
    code, output = _invoke("grade", str(run), "-w", "1")
    assert code == 0, output
    assert "note: problems.jsonl is unverified" in " ".join(output.split())
    code, text = _invoke("report", str(run), "--sign-flips", "50", "--format", "json")
    assert json.loads(text)["runs"][0]["problems_check"] == "unverified"


def test_the_committed_example_run_is_checked_by_its_subset_hash(tmp_path: Path) -> None:
    """A run made before per-problem hashes: an edit is found (not named); grading a clean copy records them."""
    problems = RunStore(EXAMPLE_RUN).read_problems()
    manifest = RunStore(EXAMPLE_RUN).read_manifest()
    assert PROBLEM_HASHES not in manifest["task"]  # the premise: an older manifest
    assert check_problems(manifest, problems).state == "verified"

    edited = tmp_path / "edited"
    shutil.copytree(EXAMPLE_RUN, edited)
    _edit_answers(edited, [problems[4].id])
    code, output = _invoke("grade", str(edited), "-w", "1")
    assert code == 2 and "cannot be told" in output, output

    clean = tmp_path / "clean"
    shutil.copytree(EXAMPLE_RUN, clean)
    code, output = _invoke("grade", str(clean), "-w", "1")
    assert code == 0, output
    recorded = RunStore(clean).read_manifest()["task"][PROBLEM_HASHES]
    assert recorded == problem_hashes(problems)
    _edit_answers(clean, [problems[4].id])  # from now on an edit is named
    code, output = _invoke("grade", str(clean), "-w", "1")
    assert code == 2 and problems[4].id in output and "1 problem(s) changed" in output, output


def test_questions_and_answer_formats_count_as_edits() -> None:
    from m1eval.records import Problem

    original = [Problem("t", "a", "What is 1+1?", ["2"], "integer"), Problem("t", "b", "q", ["x"], "expression")]
    manifest = {"task": {PROBLEM_HASHES: problem_hashes(original)}}
    assert check_problems(manifest, original).state == "verified"
    changed = [
        Problem("t", "a", "What is 1+2?", ["2"], "integer"),
        Problem("t", "b", "q", ["x"], "text"),
        Problem("t", "c", "new", ["1"], "integer"),
    ]
    check = check_problems(manifest, changed)
    assert check.state == "modified" and check.modified == ["a", "b", "c"]
    assert check_problems(manifest, original[:1]).modified == ["b"]  # a removed problem counts too
