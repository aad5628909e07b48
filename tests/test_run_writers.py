"""One writer per run folder (issue 22.2): the same ``m1eval run`` started twice never stores a
sample twice nor mixes two processes' batch timings, and the lock is one that forked children
(vLLM's engine workers) cannot keep.

Each second writer is placed at an exact moment (while the first builds its engine, or between
the first look at the folder and the lock) by a hook, never by a sleep that must be long enough.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import instant_fixtures
from helpers.instant_engine import ENGINE, InstantEngine
from helpers.run_helpers import REPO, cli_env, only_run_dir, raw_sample_lines

from m1eval.pipeline.runner import RunConfig, generate, plan_run
from m1eval.rundir.store import RunLockedError, RunStore

model, instant = instant_fixtures.model, instant_fixtures.instant  # the shared fixtures (instant is autouse)


def _config(model, data_dir, out) -> RunConfig:
    return instant_fixtures.instant_config(model, data_dir, out)


def _cli_args(model, data_dir, out) -> list[str]:
    return instant_fixtures.run_cli_args(model, data_dir, out, "--engine", ENGINE, "--no-grade")


def _batches(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "batches.jsonl").read_text().splitlines() if line.strip()]


def _one_writer(run_dir: Path, engine_tag: str) -> None:
    """6 samples, each once, and only the timings of the engine that drew them."""
    rows = raw_sample_lines(run_dir)
    keys = [(r["problem_id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6, keys
    batches = _batches(run_dir)
    assert batches and all(b["batch_id"].startswith(engine_tag + "-") for b in batches), batches
    assert {r["batch_id"] for r in rows} == {b["batch_id"] for b in batches}
    assert sum(b["batch_size"] for b in batches) == 6


def test_a_second_run_while_the_first_builds_its_engine_is_refused(model, data_dir, tmp_path):
    """Before: the lock was released while the engine loaded, so a second run took it, drew all 6
    samples, and the first then drew them again (12 lines, both runs' timings)."""
    second: list[BaseException] = []

    def second_writer() -> None:
        InstantEngine.on_build = None
        try:
            generate(plan_run(_config(model, data_dir, tmp_path)))
        except RunLockedError as exc:
            second.append(exc)

    InstantEngine.on_build = second_writer
    outcome = generate(plan_run(_config(model, data_dir, tmp_path)))
    assert outcome.state == "done" and outcome.generated == 6
    assert len(second) == 1, "the second writer was not refused"
    message = str(second[0])
    assert f"pid {os.getpid()}" in message and "\n" not in message
    assert InstantEngine.built == 1  # the second writer stopped before building an engine
    _one_writer(only_run_dir(tmp_path), f"e1-pid{os.getpid()}")


def test_a_second_process_is_refused_with_one_line_naming_the_holder(model, data_dir, tmp_path):
    """The same command in another process, started while this one builds its engine: exit 2, one
    line naming this process; nothing of it in the folder."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from helpers.instant_engine import register
        register()
        from m1eval.cli.app import app
        app(sys.argv[1:])
        """
    )
    seen: list[subprocess.CompletedProcess[str]] = []

    def second_process() -> None:
        seen.append(
            subprocess.run(
                [sys.executable, "-c", script, *_cli_args(model, data_dir, tmp_path)],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO,
                env={**cli_env(), "COLUMNS": "300"},
                check=False,
            )
        )

    InstantEngine.on_build = second_process
    outcome = generate(plan_run(_config(model, data_dir, tmp_path)))
    assert outcome.state == "done" and outcome.generated == 6
    (other,) = seen
    assert other.returncode == 2, other.stderr[-3000:]
    lines = [line for line in other.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: run folder"), other.stderr[-3000:]
    assert f"is being written by pid {os.getpid()}" in lines[0]
    _one_writer(only_run_dir(tmp_path), f"e1-pid{os.getpid()}")


def test_a_folder_made_by_another_writer_meanwhile_is_planned_again_under_the_lock(
    model, data_dir, tmp_path, monkeypatch
):
    """Both runs find no folder; the other one makes it and finishes before this one takes the
    lock. Before: this run drew its stale plan (all 6 samples) again."""
    original = RunStore.lock
    ran: list[str] = []

    def another_writer_first(self: RunStore) -> None:
        if not ran and not (self.path / "manifest.json").exists():
            ran.append("other")
            other = generate(plan_run(_config(model, data_dir, tmp_path)))  # start to end, in between
            assert other.state == "done" and other.generated == 6
        original(self)

    monkeypatch.setattr(RunStore, "lock", another_writer_first)
    outcome = generate(plan_run(_config(model, data_dir, tmp_path)))
    assert ran == ["other"]
    assert outcome.state == "done" and outcome.generated == 0 and outcome.stored == 6
    assert InstantEngine.built == 1  # only the other writer built an engine
    _one_writer(only_run_dir(tmp_path), f"e1-pid{os.getpid()}")


def test_a_forked_child_does_not_keep_the_lock_of_a_killed_writer(tmp_path):
    """A writer forks a child (as vLLM forks its engine core) and is SIGKILLed; the child lives on.
    Before: the child had inherited the flock, so the folder stayed locked until the orphan died."""
    folder = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import os, sys
        from m1eval.rundir.store import RunStore
        store = RunStore.create({str(folder)!r}, {{"run_id": "forked"}})
        child = os.fork()
        if child == 0:  # the engine worker: holds every descriptor the writer had, lives on
            os.write(1, f"child {{os.getpid()}}\\n".encode())  # one write: lines never interleave
            sys.stdin.read()  # until the test closes stdin
            os._exit(0)
        os.write(1, f"writer {{os.getpid()}}\\n".encode())  # one write: lines never interleave
        sys.stdin.read()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=cli_env(),
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        started: dict[str, int] = {}
        while len(started) < 2:
            line = process.stdout.readline()
            assert line, f"the writer stopped early: {started}"
            role, _, pid = line.strip().partition(" ")
            if role in ("writer", "child") and pid.isdigit():
                started[role] = int(pid)
        writer, child = started["writer"], started["child"]
        assert writer == process.pid
        with pytest.raises(RunLockedError, match=f"pid {writer}"):  # held while the writer lives
            RunStore(folder).lock()
        os.kill(writer, signal.SIGKILL)
        assert process.wait(60) == -signal.SIGKILL
        os.kill(child, 0)  # the orphan is still alive, with the writer's descriptors
        store = RunStore(folder)
        store.lock()  # ... and yet the folder is free
        store.unlock()
        assert f"pid {os.getpid()}" in (folder / ".lock").read_text()  # read once unlocked (see RunStore.lock)
    finally:
        process.stdin.close()  # the orphan's stdin ends: it exits
        if process.poll() is None:
            process.kill()
            process.wait(60)
