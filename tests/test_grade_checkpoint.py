"""Issue 22.8: ``grade`` checkpoints its work, so a grade killed without warning keeps what it decided.

A grade is SIGKILLed (no handler, no ``finally`` runs) after some of its symbolic verdicts came
back; the next ``grade`` of the run sends only the others to the workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from m1eval.records import Completion, Problem
from m1eval.rundir.store import RunStore

REPO = Path(__file__).resolve().parent.parent
TEXTS = [f"\\boxed{{x^{{2}}+{k}x+1}}" for k in range(12)]  # each needs sympy against (x+1)^2
KILLED_AFTER = 5


def _run_folder(path: Path) -> Path:
    store = RunStore.create(path, {"task": "t"})
    store.write_problems([Problem("t", "a", "q", ["(x+1)^{2}"], "expression")])
    store.append_samples([Completion("a", i, i, t, 1, 1, "stop", "b") for i, t in enumerate(TEXTS)])
    store.unlock()
    return path


def test_a_killed_grade_keeps_its_checkpoint_and_the_next_grades_only_the_rest(tmp_path, monkeypatch):
    run = _run_folder(tmp_path / "run")
    script = textwrap.dedent(
        f"""
        import os, signal
        from m1eval.grading import grader
        from m1eval.grading.pool import WorkerPool
        from m1eval.pipeline.stages import grade_run

        grader.CHECKPOINT_SECONDS = 0.0  # every verdict: the test needs no clock
        real_run = WorkerPool.run
        seen = []

        def run_then_die(self, items, on_result=None):
            def kept(index, result):
                on_result(index, result)
                if items[index][0] == "verdict":
                    seen.append(index)
                    if len(seen) == {KILLED_AFTER}:
                        os.kill(os.getpid(), signal.SIGKILL)
            return real_run(self, items, kept if on_result else None)

        WorkerPool.run = run_then_die
        grade_run({str(run)!r}, workers=1)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        assert process.wait(timeout=180) == -signal.SIGKILL
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # its grading workers
        except ProcessLookupError:
            pass
    kept = json.loads((run / "grade_cache.json").read_text())
    assert len(kept["verdicts"]) >= KILLED_AFTER
    assert not (run / "grades.parquet").exists()

    from m1eval.grading.pool import WorkerPool
    from m1eval.pipeline.stages import grade_run

    real_run = WorkerPool.run
    sent: list[int] = []

    def counting(self, items, on_result=None):  # noqa: ANN001
        sent.extend(1 for kind, _ in items if kind == "verdict")
        return real_run(self, items, on_result)

    monkeypatch.setattr(WorkerPool, "run", counting)
    frame = grade_run(run, workers=1)
    assert len(sent) == len(TEXTS) - len(kept["verdicts"]) <= len(TEXTS) - KILLED_AFTER
    assert list(frame["correct"]) == [k == 2 for k in range(len(TEXTS))]
    assert not (run / "grade_cache.json").exists()  # a finished grade needs no checkpoint


def test_checkpoints_are_spaced_by_the_interval() -> None:
    from m1eval.grading.grader import CHECKPOINT_SECONDS, Grader

    saved: list[dict] = []
    grader = Grader(workers=1, on_checkpoint=saved.append)
    assert grader.checkpoint_seconds == CHECKPOINT_SECONDS > 0
    grader._checkpoint()
    assert saved == []  # not before the interval has passed
    grader.checkpoint_seconds = 0.0
    grader._checkpoint()
    assert saved and set(saved[0]) == {"grader_version", "verdicts", "keys"}
