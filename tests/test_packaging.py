"""A non-editable install works on its own: the task specs are package data (issue 11, point 10).

An editable install reads the source tree, so it cannot show what a wheel is missing. These
tests build the package from a copy of the project into a scratch folder with pip and run
the installed m1eval from elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from m1eval.tasks import loader as task_lib

REPO = Path(__file__).resolve().parent.parent
TASKS = {"aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "olympiadbench": 675}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --no-deps --target`` of a copy of the project; returns the target folder."""
    root = tmp_path_factory.mktemp("install")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "m1eval", source / "m1eval", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = root / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return target


def _installed_m1eval(target: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in (task_lib.TASKS_DIR_ENV, task_lib.DATA_DIR_ENV)}
    environment.update(PYTHONPATH=str(target), COLUMNS="200", **env)
    return subprocess.run(
        [sys.executable, "-m", "m1eval", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_installed_package_lists_and_loads_every_task(installed: Path, data_dir: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import m1eval; print(m1eval.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed), "the test must run the installed copy"

    listed = _installed_m1eval(installed, tmp_path, "tasks", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for name, rows in TASKS.items():
        line = next((line for line in listed.stdout.splitlines() if f" {name} " in line), "")
        assert f" {rows} " in line and "verified" in line

    shown = _installed_m1eval(
        installed, tmp_path, "tasks", "show", "aime25", "--limit", "1", "--data-dir", str(data_dir)
    )
    assert shown.returncode == 0 and "2025-I-1" in shown.stdout, shown.stdout + shown.stderr
    assert sorted(p.name for p in (installed / "m1eval" / "tasks").glob("*.toml")) == [f"{t}.toml" for t in TASKS]


def test_no_task_specs_is_a_loud_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing spec folder used to print an empty table and exit 0 ("known: none" for run)."""
    from typer.testing import CliRunner

    from m1eval.cli.app import app

    monkeypatch.setenv(task_lib.TASKS_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(task_lib.TaskError, match="no task specs"):
        task_lib.list_tasks()
    with pytest.raises(task_lib.TaskError, match="no task specs"):
        task_lib.load_task("aime25", tmp_path)
    result = CliRunner().invoke(app, ["tasks", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no task specs (*.toml) found" in result.output and "reinstall m1eval" in result.output


@pytest.mark.slow
def test_installed_package_exports_the_viewer(installed: Path, tmp_path: Path) -> None:
    """The viewer's templates and static files are package data: an installed m1eval renders every page."""
    out = tmp_path / "site"
    result = _installed_m1eval(installed, tmp_path, "view", str(REPO / "results"), "--export", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "static" / "view.js").exists() and (out / "static" / "view.css").exists()
    problem = next((out / "runs").glob("*/p/0.html")).read_text(encoding="utf-8")
    assert "Answer clusters" in problem and "static/view.js" in problem
