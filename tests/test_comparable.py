"""Comparability warnings (issue 23, point 4): each setting compared runs can differ in is found,
and `report`, `budget` and `plot` say so above the comparison, in their CSV/JSON and under figures."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from m1eval.analysis.comparable import KEYS, clock_difference, difference_lines, run_differences
from m1eval.cli.app import app
from m1eval.rundir.rundata import load_run
from m1eval.rundir.synthetic import make_synthetic_run

LENIENT = "boxed,answer-phrase,last-math,last-number"
# What a real run records (abridged from the committed example's manifest).
BASE = {
    "sampling": {"max_tokens": 320, "temperature": 0.7, "top_p": 1.0, "top_k": -1, "n": 4, "seed": 0},
    "prompt": {
        "join": "newline",
        "suffix": "Let's think step by step and output the final answer within \\boxed{}.",
        "chat_template": True,
        "template_hash": "872be49dbb638044",
        "eos": "engine default",
    },
    "task": {"name": "aime25", "pinned_hash": "447cbc2ad982", "content_hash": "447cbc2ad982", "unpinned": False},
    "host": {"hostname": "vm", "cpu": "AMD EPYC", "accelerator": "cpu"},
}
GRADE = {"state": "done", "extraction": LENIENT, "grader_version": "m1eval-grading-1.4"}

# key -> (where in the manifest, the other run's value, the text a reader sees for it)
CHANGES = {
    "max_tokens": (("sampling", "max_tokens"), 512, "512"),
    "sampling": (("sampling", "temperature"), 0.6, "T 0.6, top_p 1"),
    "join": (("prompt", "join"), "space", "space"),
    "instruction": (("prompt", "suffix"), "Please reason step by step.", "'Please reason step by step.'"),
    "chat_template": (("prompt", "template_hash"), "0123abcd", "hash 0123abcd"),
    "eos": (("prompt", "eos"), "tokenizer", "tokenizer"),
    "extraction": (("stages", "grade", "extraction"), "boxed", "boxed"),
    "grader": (("stages", "grade", "grader_version"), "m1eval-grading-1.3", "m1eval-grading-1.3"),
    "task_pin": (("task", "pinned_hash"), "999999999999", "aime25 pin 999999999999…"),
    "hardware": (("host", "accelerator"), "1 x NVIDIA H200", "1 x NVIDIA H200"),
}


def _set(manifest: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        manifest = manifest.setdefault(key, {})
    manifest[path[-1]] = value


def _write(root: Path, model: str, seed: int, change: tuple | None = None, run_id: str | None = None) -> Path:
    path = make_synthetic_run(root, model=model, n_problems=6, n_samples=4, seed=seed, run_id=run_id)
    manifest_path = path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for block, values in copy.deepcopy(BASE).items():
        manifest[block] = {**manifest.get(block, {}), **values}
    manifest["stages"]["grade"] = {**manifest["stages"].get("grade", {}), **GRADE}
    if change is not None:
        _set(manifest, change[0], change[1])
    manifest_path.write_text(json.dumps(manifest))
    return path


def test_every_setting_is_one_of_the_listed_ones():
    assert set(CHANGES) == set(KEYS)


@pytest.mark.parametrize("key", list(CHANGES))
def test_each_difference_is_found_alone(tmp_path, key):
    where, value, shown = CHANGES[key]
    a = load_run(_write(tmp_path, "model-a", 1))
    b = load_run(_write(tmp_path, "model-b", 2, (where, value)))
    same = load_run(_write(tmp_path, "model-c", 3))
    assert run_differences([a, same]) == []  # the same protocol: nothing to say
    (found,) = run_differences([a, b], ["A", "B"])
    assert found.key == key
    assert found.values["B"] == shown and found.values["A"] != shown
    assert found.text().startswith(f"{found.what}: ") and f"{shown} (B)" in found.text()


def test_a_setting_one_run_does_not_record_reads_not_recorded(tmp_path):
    a = load_run(_write(tmp_path, "model-a", 1))
    b = load_run(_write(tmp_path, "model-b", 2, (("prompt", "join"), None)))
    (found,) = run_differences([a, b], ["A", "B"])
    assert (found.key, found.values) == ("join", {"A": "newline", "B": "not recorded"})
    # graded before policies were recorded: the only policy there was, boxed
    old = load_run(_write(tmp_path, "model-c", 3, (("stages", "grade", "extraction"), None)))
    (found,) = run_differences([a, old], ["A", "C"])
    assert found.values == {"A": "lenient", "C": "boxed"}


def test_clock_hardware_names_the_ranking_by_seconds():
    assert clock_difference({"A": "CPU AMD EPYC", "B": "CPU AMD EPYC"}) is None
    found = clock_difference({"A": "CPU AMD EPYC", "B": "1 x NVIDIA H200"})
    assert difference_lines([found]) == [
        "the runs are ranked by seconds measured on different hardware: CPU AMD EPYC (A); 1 x NVIDIA H200 (B)"
    ]


@pytest.fixture
def differing(tmp_path):
    """Two runs of one task: 320 against 512 new tokens, lenient against boxed, two machines."""
    root = tmp_path / "runs"
    _write(root, "model-a", 1)
    b = _write(root, "model-b", 2, (("sampling", "max_tokens"), 512))
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["stages"]["grade"]["extraction"] = "boxed"
    manifest["host"]["cpu"] = "Intel Xeon"
    (b / "manifest.json").write_text(json.dumps(manifest))
    return root


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_report_lists_the_differences_above_the_comparison(differing):
    text = _invoke("report", str(differing), "-f", "markdown", "--sign-flips", "50").stdout
    above = text.index("Comparability")
    assert above < text.index("Paired comparison")
    section = text[above : text.index("Paired comparison")]
    assert "| max new tokens | 320 (model-a/synthetic-s1); 512 (model-b/synthetic-s2) |" in section
    assert "| extraction policy | lenient (model-a/synthetic-s1); boxed (model-b/synthetic-s2) |" in section
    assert "| generated on | CPU AMD EPYC (model-a/synthetic-s1); CPU Intel Xeon (model-b/synthetic-s2) |" in section
    table = " ".join(_invoke("report", str(differing), "--sign-flips", "50").stdout.split())
    assert table.index("Comparability") < table.index("Paired comparison")

    data = json.loads(_invoke("report", str(differing), "-f", "json", "--sign-flips", "50").stdout)
    assert [d["key"] for d in data["differences"]] == ["max_tokens", "extraction", "hardware"]
    assert data["differences"][0]["values"] == {"model-a/synthetic-s1": "320", "model-b/synthetic-s2": "512"}

    frame = pd.read_csv(io.StringIO(_invoke("report", str(differing), "-f", "csv", "--sign-flips", "50").stdout))
    rows = frame[frame["metric"].str.startswith("differs:")]
    assert rows["metric"].tolist() == ["differs:max_tokens", "differs:extraction", "differs:hardware"]
    assert rows["note"].iloc[0] == "max new tokens: 320 (model-a/synthetic-s1); 512 (model-b/synthetic-s2)"


def test_one_run_and_equal_runs_get_no_section(tmp_path):
    root = tmp_path / "same"
    _write(root, "model-a", 1)
    _write(root, "model-b", 2)
    assert "Comparability" not in _invoke("report", str(root), "-f", "markdown", "--sign-flips", "50").stdout
    data = json.loads(_invoke("report", str(root / "aime25" / "model-a"), "-f", "json", "--sign-flips", "50").stdout)
    assert data["differences"] == []


def test_budget_warns_above_its_tables_and_keeps_the_differences(differing, tmp_path):
    out = tmp_path / "tables"
    result = _invoke("budget", str(differing), "--sign-flips", "100", "--out", str(out))
    text = " ".join(result.stdout.split())
    warning = "warning: the compared runs differ in max new tokens: 320 (model-a); 512 (model-b)"
    assert warning in text and text.index(warning) < text.index("most accurate run within each time budget")
    # each run priced by its own batches, measured on its own machine: the ranking compares machines too
    ranked = "the runs are ranked by seconds measured on different hardware: CPU AMD EPYC (model-a); CPU Intel Xeon"
    assert ranked in text
    assert "generated on" not in text  # for a time budget the clocks' hardware is what counts
    task = json.loads((out / "budget.json").read_text())["tasks"][0]
    assert [d["key"] for d in task["differences"]] == ["max_tokens", "extraction", "clock_hardware"]
    verdicts = pd.read_csv(out / "budget_verdicts.csv")
    assert verdicts["differences"].str.contains("max new tokens: 320 \\(model-a\\); 512 \\(model-b\\)").all()


def test_plot_notes_the_differences_under_its_figures(differing, tmp_path):
    from m1eval.figures import plots

    result = _invoke("plot", str(differing), "--figure", "majk", "--sign-flips", "50", "--out", str(tmp_path / "f"))
    text = " ".join(result.stdout.split())
    assert "note: the compared runs differ in max new tokens: 320 (model-a); 512 (model-b)" in text
    # the same line is the figure's note, under the axes
    runs = [load_run(p) for p in sorted(differing.glob("*/*/*"))]
    from m1eval.analysis.curves import metric_curve

    lines = difference_lines(run_differences(runs, ["model-a", "model-b"]))
    fig = plots.figure_metric([metric_curve(r, "maj", sign_flips=50) for r in runs], notes=lines)
    note = fig._supxlabel.get_text()  # noqa: SLF001 - where matplotlib keeps the figure's bottom label
    assert " ".join(note.split()).startswith("• the compared runs differ in max new tokens: 320 (model-a); 512")
