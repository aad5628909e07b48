"""One-line errors, finished work kept, no folder for a refused run (issue 22.6).

Before: a full disk during ``run`` was a 47-line traceback and left samples without their batch
timings; ``grade`` on a read-only folder a 53-line traceback; a ``manifest.json`` holding ``[]`` an
``AttributeError``; ``--engine openai`` without an endpoint (or with ``ftp://``) made the run folder
and then advised to resume.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import stat
from pathlib import Path

import pytest
from helpers import instant_fixtures
from helpers.instant_engine import ENGINE
from helpers.run_helpers import only_run_dir, raw_sample_lines
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines.openai import OpenAIEngine
from m1eval.engines.options import OptionError
from m1eval.pipeline.runner import RunConfig, plan_run
from m1eval.view.catalog import Catalog

model, instant = instant_fixtures.model, instant_fixtures.instant  # the shared fixtures (instant is autouse)


_run_args = instant_fixtures.run_cli_args


def _invoke(args: list[str]):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def _one_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    return errors[0]


def _batches(run_dir: Path) -> list[dict]:
    path = run_dir / "batches.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# ---------------------------------------------------------------------------- disk full during run


@pytest.mark.parametrize("full_at", ["samples.jsonl", "batches.jsonl"])
def test_a_full_disk_during_run_is_one_line_and_keeps_every_finished_batch(
    full_at, model, data_dir, tmp_path, monkeypatch
):
    """The second batch's write fails with ENOSPC (at its samples, or at its timing after its samples):
    one line, exit 1, the first batch kept with its timing and counted, the second not half-stored."""
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync(fd: int) -> None:
        target = next(tmp_path.rglob(full_at), None)
        if target is not None and os.fstat(fd).st_ino == target.stat().st_ino:
            calls.append(fd)
            if len(calls) == 2:  # the second batch
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    args = _run_args(model, data_dir, tmp_path, "--engine", ENGINE, "--chunk-size", "2", "--no-grade")
    result = _invoke(args)
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output)
    assert f"{full_at}: No space left on device" in line and "2/6 samples are kept" in line, line
    run_dir = only_run_dir(tmp_path)
    rows = raw_sample_lines(run_dir)
    batches = _batches(run_dir)
    assert len(rows) == 2 and len(batches) == 1  # the first batch, whole; nothing of the second
    assert {r["batch_id"] for r in rows} == {batches[0]["batch_id"]}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["state"] == "failed" and manifest["stages"]["generate"]["samples"] == 2

    monkeypatch.setattr(os, "fsync", real_fsync)  # space again: the same command resumes
    assert _invoke(args).exit_code == 0
    rows, batches = raw_sample_lines(run_dir), _batches(run_dir)
    keys = [(r["problem_id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6
    assert {r["batch_id"] for r in rows} == {b["batch_id"] for b in batches}  # every sample has its timing
    assert sum(b["batch_size"] for b in batches) == 6


# ---------------------------------------------------------------------------- grade on a read-only folder


def _make_read_only(folder: Path, monkeypatch) -> None:
    """Take write permission away; as root (who writes anyway) also fail every open for writing under
    ``folder`` with EACCES, which is what a read-only folder does to everyone else."""
    for path in [folder, *folder.iterdir()]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    if os.geteuid() != 0:
        return
    real_os_open, real_io_open = os.open, io.open

    def inside(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and Path(os.path.abspath(path)).is_relative_to(folder)

    def denied(path):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            raise denied(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def io_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(c in mode for c in "wax+"):
            raise denied(file)
        return real_io_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)


def test_grade_on_a_read_only_folder_is_one_line(model, data_dir, tmp_path, monkeypatch):
    assert _invoke(_run_args(model, data_dir, tmp_path, "--engine", ENGINE, "--no-grade")).exit_code == 0
    run_dir = only_run_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    try:
        _make_read_only(run_dir, monkeypatch)
        result = _invoke(["grade", str(run_dir), "--workers", "1"])
        monkeypatch.undo()
    finally:
        for path in [run_dir, *run_dir.iterdir()]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert f"run folder {run_dir} cannot be written (Permission denied)" in line, line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


# ---------------------------------------------------------------------------- a manifest that is not an object


@pytest.mark.parametrize("content", ["[]", '"a string"', "null", "3"])
def test_a_manifest_that_is_not_an_object_is_one_line_naming_it(content, model, data_dir, tmp_path):
    args = _run_args(model, data_dir, tmp_path, "--engine", ENGINE)
    assert _invoke(args).exit_code == 0  # generated and graded
    run_dir = only_run_dir(tmp_path)
    (run_dir / "manifest.json").write_text(content)
    expected = f"{run_dir / 'manifest.json'}: expected a JSON object"
    for command in (["grade", str(run_dir)], ["report", str(run_dir)], args):
        result = _invoke(command)
        assert result.exit_code == 2, (command[0], result.output)
        assert expected in _one_error_line(result.output), (command[0], result.output)
    (slot,) = Catalog([run_dir]).slots.values()
    assert slot.error is not None and expected in slot.error
    assert (run_dir / "manifest.json").read_text() == content


# ---------------------------------------------------------------------------- openai endpoints


@pytest.mark.parametrize(
    "endpoint, said",
    [
        (None, "openai: the openai engine needs an endpoint: the http or https URL of an OpenAI-compatible server"),
        ("ftp://models.example:21/v1", "openai: endpoint 'ftp://models.example:21/v1' is not an http or https URL"),
        ("http://", "openai: endpoint 'http://' is not an http or https URL with a host"),
    ],
)
def test_openai_without_an_http_endpoint_is_refused_before_any_folder(endpoint, said, model, data_dir, tmp_path):
    out = tmp_path / "results"
    extra = ["--engine", "openai", *(["--endpoint", endpoint] if endpoint else []), "--no-grade"]
    result = _invoke(_run_args(model, data_dir, out, *extra))
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.output)
    assert said in line and line.endswith("(give it with --endpoint URL)"), line
    assert not out.exists()  # no folder to "resume"

    config = RunConfig(model=str(model), task="aime25", k=1, engine="openai", data_dir=data_dir, out=out)
    config.engine_options = {"endpoints": [endpoint]} if endpoint else {}
    with pytest.raises(OptionError) as caught:
        plan_run(config)
    assert said in str(caught.value) and "--" not in str(caught.value)  # the library names no CLI flag
    assert not out.exists()


def test_openai_endpoints_that_are_fine(model, data_dir, tmp_path):
    for endpoints in (["http://gpu1:8000"], ["https://api.example/v1", "gpu2:8000"], "http://a:1,http://b:2"):
        config = RunConfig(model=str(model), task="aime25", k=1, engine="openai", data_dir=data_dir, out=tmp_path)
        config.engine_options = {"endpoints": endpoints}
        assert plan_run(config).engine_options["endpoints"] == endpoints
    assert not any(tmp_path.iterdir())
    with pytest.raises(OptionError, match="is not an http or https URL"):  # building the engine checks the same
        OpenAIEngine(str(model), options={"endpoints": ["ftp://models.example"]})
