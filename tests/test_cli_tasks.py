"""CLI skeleton: `m1eval tasks`, `tasks show`, `--version`, and `python -m m1eval`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from m1eval import __version__
from m1eval.cli.app import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"m1eval {__version__}"


def test_tasks_table_lists_five_verified(data_dir: Path) -> None:
    result = runner.invoke(app, ["tasks", "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name, rows in {"math500": 500, "aime25": 30, "olympiadbench": 675, "aime24": 30, "amc23": 40}.items():
        line = next(line for line in result.stdout.splitlines() if f" {name} " in line)
        assert f" {rows} " in line and "verified" in line


def test_tasks_table_flags_a_mismatch(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "amc23"
    folder.mkdir(parents=True)
    lines = (data_dir / "amc23" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "test.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["tasks", "--data-dir", str(tmp_path / "data")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "MISMATCH" in next(line for line in result.stdout.splitlines() if " amc23 " in line)


def test_tasks_show(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["tasks", "show", "aime25", "--limit", "2", "--data-dir", str(data_dir)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "2025-I-1" in result.stdout and "2025-I-2" in result.stdout and "2025-I-3" not in result.stdout
    assert "70" in result.stdout


def test_tasks_show_unknown_task_is_a_clear_error(data_dir: Path) -> None:
    result = runner.invoke(app, ["tasks", "show", "nope", "--data-dir", str(data_dir)])
    assert result.exit_code == 2 and "unknown task 'nope'" in result.stdout


def test_python_dash_m_matches_the_script(data_dir: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "m1eval", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"m1eval {__version__}"
    script = Path(sys.executable).parent / "m1eval"
    if script.exists():
        via_script = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
        assert via_script.stdout == result.stdout
