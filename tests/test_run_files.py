"""Run files are never followed through a symbolic link (issue 22.3).

A run folder shared as a tarball can carry links. Before, with ``samples.jsonl`` a link to a
file outside the folder, ``run`` appended samples to that file and ``grade`` "repaired a torn
last line" of it, deleting the last line of an unrelated file. Every reader and writer (``run``,
``grade``, ``report``, the viewer) now refuses a run file that is a link or not a regular file,
or a run folder that is a link, with one line naming it, and leaves the link's target as it was.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import instant_engine, instant_fixtures
from helpers.instant_engine import ENGINE
from helpers.run_helpers import only_run_dir
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines import ENGINES
from m1eval.pipeline.runner import RunConfig, generate, plan_run
from m1eval.pipeline.stages import grade_run
from m1eval.view.catalog import Catalog

RUN_ID = "shared"
# A line an unrelated file might end with, no newline after it: a "repair" would cut it.
UNRELATED_TAIL = b'{"note": "the last line of someone else\'s file, without its newline"'
RUN_FILES = (
    "manifest.json",
    "problems.jsonl",
    "samples.jsonl",
    "batches.jsonl",
    "grades.parquet",
    "samples_meta.parquet",
    ".lock",
)
# what each command opens, so must refuse when it is a link
OPENS = {
    "grade": set(RUN_FILES),
    "run": set(RUN_FILES) - {"grades.parquet"},  # --no-grade
    "report": set(RUN_FILES) - {".lock"},  # readers do not lock
    "view": set(RUN_FILES) - {".lock"},
}


model, instant = instant_fixtures.model, instant_fixtures.instant  # the shared fixtures (instant is autouse)


def _config(model, data_dir, out, k: int = 2) -> RunConfig:
    return instant_fixtures.instant_config(model, data_dir, out, k=k, run_id=RUN_ID)


@pytest.fixture(scope="module")
def graded(model, data_dir, tmp_path_factory) -> Path:
    """A finished, graded run with every run file (the metadata view included)."""
    out = tmp_path_factory.mktemp("graded")
    ENGINES[ENGINE] = f"{instant_engine.__name__}:InstantEngine"
    try:
        assert generate(plan_run(_config(model, data_dir, out))).state == "done"
    finally:
        del ENGINES[ENGINE]
    run_dir = only_run_dir(out)
    grade_run(run_dir, workers=1)
    assert {p.name for p in run_dir.iterdir()} >= set(RUN_FILES)
    return run_dir


def _copy(graded: Path, root: Path) -> Path:
    """The graded run at root/<task>/<model>/<run id>, where `run --out root --run-id` finds it."""
    run_dir = root / graded.parent.parent.name / graded.parent.name / graded.name
    shutil.copytree(graded, run_dir)
    return run_dir


def _link_out(run_dir: Path, name: str, outside: Path) -> Path:
    """Move ``name`` out of the folder (an unrelated file now) and leave a link to it in its place."""
    outside.mkdir(parents=True, exist_ok=True)
    target = outside / name.lstrip(".")
    data = (run_dir / name).read_bytes() if name != ".lock" else b"precious\n"
    if name.endswith(".jsonl"):
        data += UNRELATED_TAIL
    target.write_bytes(data)
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(target)
    return target


def _state(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _command(command: str, run_dir: Path, model: Path, data_dir: Path) -> tuple[int, str]:
    """Run ``command`` on the folder; (exit code, what it printed) or, for the viewer, (2, the slot's error)."""
    if command == "view":
        (slot,) = Catalog([run_dir]).slots.values()
        return (2 if slot.error else 0), slot.error or ""
    args = {
        "grade": ["grade", str(run_dir), "--workers", "1"],
        "report": ["report", str(run_dir)],
        "run": [
            "run",
            *("--model", str(model), "--engine", ENGINE, "--task", "aime25", "--k", "3", "--limit", "3"),
            *("--max-tokens", "16", "--data-dir", str(data_dir), "--out", str(run_dir.parent.parent.parent)),
            *("--run-id", RUN_ID, "--no-grade"),
        ],
    }[command]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def _one_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    return errors[0]


@pytest.mark.parametrize(
    ("command", "name"), [(command, name) for command in sorted(OPENS) for name in RUN_FILES if name in OPENS[command]]
)
def test_a_linked_run_file_is_refused_and_its_target_untouched(command, name, graded, model, data_dir, tmp_path):
    run_dir = _copy(graded, tmp_path / "runs")
    target = _link_out(run_dir, name, tmp_path / "elsewhere")
    before = target.read_bytes()
    code, said = _command(command, run_dir, model, data_dir)
    assert code == 2, said
    line = said if command == "view" else _one_error_line(said)
    assert f"{run_dir / name} is a symbolic link" in line, line
    assert target.read_bytes() == before  # nothing appended, cut, truncated or replaced
    assert (run_dir / name).is_symlink()


@pytest.mark.parametrize("command", sorted(OPENS))
def test_a_linked_run_folder_is_refused(command, graded, model, data_dir, tmp_path):
    real = _copy(graded, tmp_path / "elsewhere")
    linked = tmp_path / "runs" / graded.parent.parent.name / graded.parent.name / graded.name
    linked.parent.mkdir(parents=True)
    linked.symlink_to(real, target_is_directory=True)
    before = _state(real)
    code, said = _command(command, linked, model, data_dir)
    assert code == 2, said
    line = said if command == "view" else _one_error_line(said)
    assert f"{linked} (the run folder) is a symbolic link" in line, line
    assert _state(real) == before


@pytest.mark.parametrize("command", ["grade", "report", "view"])
@pytest.mark.parametrize("kind", ["folder", "named pipe"])
def test_a_run_file_that_is_not_a_regular_file_is_refused(command, kind, graded, model, data_dir, tmp_path):
    run_dir = _copy(graded, tmp_path / "runs")
    (run_dir / "samples.jsonl").unlink()
    if kind == "folder":
        (run_dir / "samples.jsonl").mkdir()
    else:
        os.mkfifo(run_dir / "samples.jsonl")  # before: a reader would wait on it forever
    (run_dir / "samples_meta.parquet").unlink()  # so the samples themselves are read
    code, said = _command(command, run_dir, model, data_dir)
    assert code == 2, said
    line = said if command == "view" else _one_error_line(said)
    assert f"{run_dir / 'samples.jsonl'} is a {kind}, not a regular file" in line, line


@pytest.mark.parametrize("name", ["manifest.json.tmp", "grades.parquet.tmp"])
def test_a_planted_temporary_link_does_not_redirect_a_write(name, graded, model, data_dir, tmp_path):
    """The atomic replace writes a temporary file first; a link left at its name is removed, not written through."""
    run_dir = _copy(graded, tmp_path / "runs")
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_bytes(b"someone else's file\n")
    (run_dir / name).symlink_to(victim)
    code, said = _command("grade", run_dir, model, data_dir)
    assert code == 0, said
    assert victim.read_bytes() == b"someone else's file\n"
    final = run_dir / name.removesuffix(".tmp")
    assert final.is_file() and not final.is_symlink()
    assert not os.path.lexists(run_dir / name)
