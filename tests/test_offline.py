"""Without the Hugging Face hub m1eval fails in seconds with one line saying what to do (issue 11, point 11).

Before, ``datasets``/``transformers`` retried an unreachable hub with backoff: ``m1eval tasks``
took about 2 min, a quickstart ``run`` about 30-50 s, ``--model m1`` about 60 s before the error.
The hub is replaced here by local endpoints that refuse connections or never answer, so the
tests behave the same on a machine with internet access.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Old behaviour: minutes of retries. A run that is still busy after this long has not failed fast.
DEADLINE_S = 60
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections and never answers: the worst kind of unreachable."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def answering_endpoint() -> Iterator[str]:
    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_tells_reachable_from_refused_and_silent(answering_endpoint, silent_endpoint) -> None:
    from m1eval import hub

    assert hub.probe(answering_endpoint, timeout=2) is None  # any HTTP status means the hub is there
    assert "ConnectError" in hub.probe(f"http://127.0.0.1:{_closed_port()}", timeout=2)
    started = time.monotonic()
    reason = hub.probe(silent_endpoint, timeout=1)
    assert reason is not None and time.monotonic() - started < 5


def test_unreachable_hub_switches_the_process_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from m1eval import hub

    for name in hub.OFFLINE_VARS:
        monkeypatch.delenv(name, raising=False)
    for module, names in (
        ("huggingface_hub.constants", ["HF_HUB_OFFLINE"]),
        ("datasets.config", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"]),
    ):
        if module in sys.modules:  # go_offline() flips these; put them back afterwards
            for name in names:
                monkeypatch.setattr(sys.modules[module], name, getattr(sys.modules[module], name))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    hub.reset()
    try:
        reason = hub.offline_reason()
        assert reason and "unreachable" in reason
        assert os.environ["HF_HUB_OFFLINE"] == "1"  # inherited by engine subprocesses
        assert hub.offline_reason() == reason  # asked once per process
    finally:
        hub.reset()


def _offline_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*OFFLINE_VARS, "M1EVAL_DATA_DIR")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-cache"), COLUMNS="200", PYTHONUNBUFFERED="1")
    return env


def _m1eval(tmp_path: Path, endpoint: str, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "m1eval", *args],
            cwd=REPO,
            env=_offline_env(tmp_path, endpoint),
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"m1eval {' '.join(args)} was still waiting for the hub after {DEADLINE_S} s")
    return result, time.monotonic() - started


def _one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stdout + result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_tasks_without_data_or_hub_fail_fast(kind, silent_endpoint, tmp_path: Path) -> None:
    endpoint = silent_endpoint if kind == "silent" else f"http://127.0.0.1:{_closed_port()}"
    result, _ = _m1eval(tmp_path, endpoint, "tasks")
    assert result.returncode == 1
    _one_error_line(result, "unreachable", "data_dir", "M1EVAL_DATA_DIR", "HF_HUB_OFFLINE=1")
    assert result.stdout.count("not in the local cache") == 5  # every task row says why, the hint comes once


def test_quickstart_run_without_data_or_hub_fails_fast(tmp_path: Path) -> None:
    result, _ = _m1eval(
        tmp_path,
        f"http://127.0.0.1:{_closed_port()}",
        "run",
        "--model",
        "r1-qwen-1.5b",
        "--task",
        "aime25",
        "--k",
        "1",
        "--out",
        str(tmp_path / "results"),
    )
    assert result.returncode == 2
    _one_error_line(result, "task 'aime25'", "unreachable", "data_dir", "M1EVAL_DATA_DIR")


def test_uncached_model_without_hub_fails_fast(tmp_path: Path, data_dir: Path) -> None:
    """`--model m1`: the tokenizer of togethercomputer/M1-3B was looked up on the hub with retries."""
    result, _ = _m1eval(
        tmp_path,
        f"http://127.0.0.1:{_closed_port()}",
        "run",
        "--model",
        "m1",
        "--task",
        "aime25",
        "--k",
        "1",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "results"),
    )
    assert result.returncode == 2
    _one_error_line(result, "togethercomputer/M1-3B", "unreachable", "not in the local cache", "local model folder")


def test_bench_of_an_uncached_hub_model_without_hub_fails_fast(tmp_path: Path) -> None:
    result, _ = _m1eval(
        tmp_path,
        f"http://127.0.0.1:{_closed_port()}",
        "bench",
        "-m",
        "r1-qwen-1.5b",
        "-e",
        "hf",
        "--batch-sizes",
        "1",
        "--no-find-peak",
        "--gen-len",
        "4",
        "--prompt-len",
        "4",
        "--out",
        str(tmp_path / "bench"),
    )
    assert result.returncode == 1
    _one_error_line(
        result, "r1-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "unreachable", "not in the local cache"
    )
