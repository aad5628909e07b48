"""A run records the rows it actually used (issue 11, point 2).

With ``--allow-unpinned`` the manifest used to store the task's *pinned* hash and no mark,
so an unpinned run looked pinned; with ``$M1EVAL_DATA_DIR`` the folder read was recorded as
null. These runs go through the real CLI and the transformers engine on a tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.run_helpers import REPO, only_run_dir, tiny_model
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.tasks import loader as task_lib


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "m1eval", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != task_lib.DATA_DIR_ENV}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200", **extra)
    return env


def _changed_copy(data_dir: Path, root: Path) -> Path:
    """aime25 with its first question edited: the rows no longer match the pin."""
    folder = root / "aime25"
    folder.mkdir(parents=True)
    lines = (data_dir / "aime25" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["problem"] = first["problem"] + " (edited)"
    lines[0] = json.dumps(first)
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.mark.slow
def test_unpinned_run_records_the_hash_it_read_and_report_says_so(tmp_path_factory, data_dir, tmp_path):
    model = tiny_model(tmp_path_factory)
    edited = _changed_copy(data_dir, tmp_path / "edited-data")
    common = [
        "--model",
        str(model),
        "--engine",
        "hf",
        "--task",
        "aime25",
        "--limit",
        "2",
        "--k",
        "2",
        "--max-tokens",
        "8",
        "-o",
        "batch_size=4",
        "--out",
        str(tmp_path / "results"),
    ]
    result = _run("run", *common, "--data-dir", str(edited), "--allow-unpinned", env=_env())
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "results")
    task = json.loads((run_dir / "manifest.json").read_text())["task"]
    spec = task_lib.load_spec("aime25")
    actual = task_lib.content_hash(task_lib.load_task("aime25", edited, allow_unpinned=True))
    assert task["unpinned"] is True
    assert task["content_hash"] == actual != spec.content_hash
    assert task["pinned_hash"] == spec.content_hash
    assert task["data_dir"] == str(edited.resolve())
    # the summary printed after the run, and `report` later, mark the run as unpinned
    assert "aime25 (UNPINNED)" in result.stdout
    report = CliRunner().invoke(app, ["report", str(run_dir), "--bootstrap", "0"], env={"COLUMNS": "200"})
    assert report.exit_code == 0, report.output
    assert "aime25 (UNPINNED)" in report.stdout and "not comparable with pinned results" in report.stdout
    as_json = CliRunner().invoke(app, ["report", str(run_dir), "--bootstrap", "0", "--format", "json"])
    assert json.loads(as_json.stdout)["runs"][0]["unpinned"] is True


@pytest.mark.slow
def test_pinned_run_records_the_folder_from_the_environment(tmp_path_factory, data_dir, tmp_path):
    model = tiny_model(tmp_path_factory)
    result = _run(
        "run",
        "--model",
        str(model),
        "--engine",
        "hf",
        "--task",
        "aime25",
        "--limit",
        "1",
        "--k",
        "1",
        "--max-tokens",
        "4",
        "--out",
        str(tmp_path / "results"),
        "--no-grade",
        env=_env(**{task_lib.DATA_DIR_ENV: str(data_dir)}),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    task = json.loads((only_run_dir(tmp_path / "results") / "manifest.json").read_text())["task"]
    assert task["data_dir"] == str(Path(data_dir).resolve())
    assert task["unpinned"] is False
    assert task["content_hash"] == task["pinned_hash"] == task_lib.load_spec("aime25").content_hash


def test_report_recognises_unpinned_runs_from_older_manifests() -> None:
    """Older manifests stored the pin as content_hash; a full run whose own subset hash differs was unpinned."""
    from m1eval.analysis.report import unpinned_note

    pinned = {"name": "aime25", "limit": None, "rows": 30, "problems": 30, "content_hash": "aaa", "subset_hash": "aaa"}
    assert unpinned_note({"task": pinned}) is None
    assert unpinned_note({"task": {**pinned, "subset_hash": "bbb"}}) is not None
    assert unpinned_note({"task": {**pinned, "subset_hash": "bbb", "limit": 5}}) is None  # a subset: cannot tell
    assert unpinned_note({"task": {**pinned, "subset_hash": "bbb", "problems": 24}}) is None  # a chosen subset
    marked = {**pinned, "unpinned": True, "content_hash": "bbb", "pinned_hash": "aaa"}
    assert "not comparable" in unpinned_note({"task": marked})
    assert unpinned_note({"task": {**marked, "unpinned": False}}) is None
