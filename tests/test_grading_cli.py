"""`m1eval check` reads text as `grade` does; `m1eval grade` stops on Ctrl-C in one line, keeping work."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.records import Completion, Problem
from m1eval.rundir.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def _check(*args, stdin=None):
    return CliRunner().invoke(app, ["check", *args], input=stdin)


def test_check_uses_grade_extraction_and_prints_status():
    unclosed = _check("100", "\\boxed{100")
    assert unclosed.exit_code == 3 and "status: no_answer" in unclosed.output and "NO ANSWER" in unclosed.output
    assert "EQUIVALENT" not in unclosed.output.replace("NOT EQUIVALENT", "")
    ok = _check("100", "so \\boxed{100}")
    assert ok.exit_code == 0 and "status: ok" in ok.output and "found by boxed" in ok.output
    phrase = _check("17", "The final answer is 17.\n")
    assert phrase.exit_code == 3  # boxed policy: no box, no answer (as grade scores it)
    lenient = _check("17", "The final answer is 17.\n", "--extraction", "lenient")
    assert lenient.exit_code == 0 and "found by answer-phrase" in lenient.output
    bare = _check("\\dfrac{1}{2}", "0.5")
    assert bare.exit_code == 0 and "(bare answer)" in bare.output


def test_check_refused_comparison_is_not_printed_as_not_equivalent():
    result = _check("x^2", "\\frac{x}{}^")
    assert result.exit_code == 3 and "status: unparsable" in result.output and "NOT EQUIVALENT" not in result.output
    # a trigonometric identity takes sympy ~1 s here: 100x the 10 ms deadline
    timeout = _check("\\frac{\\sin^2 x + \\cos^2 x}{1 + \\tan^2 x}", "\\cos^2 x", "--timeout", "0.01")
    assert timeout.exit_code == 3 and "TIMEOUT" in timeout.output


def test_check_reads_stdin_and_files(tmp_path):
    long_completion = "reasoning " * 20_000 + "\nso \\boxed{42}"
    assert _check("42", "-", stdin=long_completion).exit_code == 0
    path = tmp_path / "completion.txt"
    path.write_text(long_completion, encoding="utf-8")
    assert _check("42", "--file", str(path)).exit_code == 0
    missing = _check("42", "--file", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2 and "nope.txt" in missing.output


def test_check_sanitises_escapes_and_refuses_empty_gold():
    result = _check("7", "\\boxed{\x1b[2J\x1b]0;pwned\x07 7}")
    assert "\x1b" not in result.output and "\x07" not in result.output and "\\x1b" in result.output
    empty = _check("  ", "5")
    assert empty.exit_code == 2 and "empty" in empty.output


def _one_problem_run(run: Path, gold: str, answer_format: str, texts: list[str]) -> Path:
    """A run folder of one problem whose samples are ``texts`` (no engine needed to grade it)."""
    store = RunStore.create(run, {"task": "t"})
    store.write_problems([Problem("t", "a", "q", [gold], answer_format)])
    store.append_samples([Completion("a", i, i, t, 1, 1, "stop", "b") for i, t in enumerate(texts)])
    store.unlock()
    return run


def test_check_mirrors_grade_on_the_same_texts(tmp_path):
    """The verdict and status of `check` equal those `grade` writes, text for text."""
    texts = [
        "\\boxed{5}",
        "\\boxed{5",
        "The answer is 5.",
        "\\boxed{x}",
        "<think>\\boxed{5}",
        "\\boxed{\\frac{10}{2}}",
        "\\boxed{5 abcdefghijklmnopqrstuvwxyzabcd!}",
    ]
    run = _one_problem_run(tmp_path / "run", "5", "integer", texts)
    assert CliRunner().invoke(app, ["grade", str(run), "-w", "1"]).exit_code == 0
    frame = RunStore(run).read_grades()
    for text, (_, row) in zip(texts, frame.iterrows()):
        result = _check("5", text, "--mode", "completion")
        status = "truncated" if row["status"] == "truncated" else row["status"]
        assert f"status: {status}" in result.output, (text, result.output)
        assert (result.exit_code == 0) == bool(row["correct"]), text


def _slow_run(tmp_path: Path) -> Path:
    """Hundreds of distinct expressions: each needs sympy for its verdict and its class key."""
    texts = [f"\\boxed{{(x+{k})^{{7}} - \\frac{{x^{{3}}}}{{{k + 2}}}}}" for k in range(600)]
    return _one_problem_run(tmp_path / "slow", "(x+1)^{7}", "expression", texts)


def test_interrupted_grade_prints_one_line_and_keeps_verdicts(tmp_path):
    """Ctrl-C to the whole process group of a background `grade` (SIGINT ignored at start)."""
    run = _slow_run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "m1eval", "grade", str(run), "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - as a shell's `&` does
    )
    manifest = run / "manifest.json"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:  # wait until the workers are up
            if "worker" in _children(process.pid):
                break
            time.sleep(0.5)
        time.sleep(4)
        assert process.poll() is None, process.communicate()[0]
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "interrupted" in output
    stage = json.loads(manifest.read_text())["stages"]["grade"]
    assert stage["state"] == "interrupted"
    kept = json.loads((run / "grade_cache.json").read_text())  # what was done (see the test below)
    assert set(kept) == {"grader_version", "verdicts", "keys"}
    assert not (run / "grades.parquet").exists()


def test_interrupted_grade_run_keeps_symbolic_verdicts_for_the_next_grade(tmp_path, monkeypatch):
    """Ctrl-C arrives after some sympy verdicts came back: they are saved and not recomputed."""
    from m1eval.grading.pool import WorkerPool
    from m1eval.pipeline.stages import GradingInterrupted, grade_run

    texts = [f"\\boxed{{x^{{2}}+{k}x+1}}" for k in range(8)]
    run = _one_problem_run(tmp_path / "run", "(x+1)^{2}", "expression", texts)
    real_run = WorkerPool.run

    def interrupted_after_three(self, items, on_result=None):  # noqa: ANN001
        if items[0][0] != "verdict":
            return real_run(self, items, on_result)
        results = real_run(self, items[:3], on_result)
        assert len(results) == 3
        raise KeyboardInterrupt

    monkeypatch.setattr(WorkerPool, "run", interrupted_after_three)
    with pytest.raises(GradingInterrupted, match="3 verdicts"):
        grade_run(run, workers=1)
    assert json.loads((run / "manifest.json").read_text())["stages"]["grade"]["state"] == "interrupted"
    sent: list[int] = []

    def counting(self, items, on_result=None):  # noqa: ANN001
        sent.extend(1 for kind, _ in items if kind == "verdict")
        return real_run(self, items, on_result)

    monkeypatch.setattr(WorkerPool, "run", counting)
    frame = grade_run(run, workers=1)
    assert len(sent) == 5  # the 3 kept verdicts were not sent again
    assert list(frame["correct"]) == [False, False, True, False, False, False, False, False]
    assert not (run / "grade_cache.json").exists()


def _children(pid: int) -> str:
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return "worker" if out.stdout.strip() else ""
