"""The openai engine against misbehaving servers on 127.0.0.1 (issue 11, points 3, 6, 7).

A scripted stdlib server stands in for a broken OpenAI-compatible server: a choice without
text, a request that never ends, a server that trickles one byte at a time, a 503 once.
Healthy answers are plain text (no token ids), which the engine re-tokenises locally.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from helpers.run_helpers import REPO, cli_env, m1eval_cmd, only_run_dir, raw_sample_lines, tiny_model
from helpers.vllm_server import JSONHandler

from m1eval.engines import openai as openai_engine
from m1eval.engines.base import EngineError, GenerationRequest
from m1eval.engines.openai import OpenAIEngine, ServerError, default_timeout
from m1eval.records import SamplingConfig

HANG, TRICKLE_BODY, TRICKLE_HEADERS, NO_TEXT, NULL_TEXT, FAIL_ONCE = 900, 901, 902, 903, 904, 905


class ScriptedServer:
    """/v1/models lists ``model``; /v1/completions behaves by the request's seed (see the constants)."""

    def __init__(self, model: str) -> None:
        self.stop_event = threading.Event()
        self.failed_once: set[int] = set()
        outer = self

        class Handler(JSONHandler):
            protocol_version = "HTTP/1.1"
            model_id = model

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                seed = int(body.get("seed", 0))
                try:
                    outer.answer(self, seed)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler, seed: int) -> None:
        ok = {
            "choices": [{"index": 0, "text": f" so \\boxed{{{seed % 7}}}", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6},
        }
        if seed == HANG:
            self.stop_event.wait(120)
        elif seed == NO_TEXT:
            handler._send(200, {"choices": [{"index": 0, "finish_reason": "stop"}], "usage": {}})
        elif seed == NULL_TEXT:
            handler._send(200, {"choices": [{"index": 0, "text": None, "finish_reason": "stop"}]})
        elif seed == FAIL_ONCE and seed not in self.failed_once:
            self.failed_once.add(seed)
            handler._send(503, {"error": {"message": "warming up (test server)"}})
        elif seed == TRICKLE_BODY:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            while not self.stop_event.wait(0.3):
                handler.wfile.write(b" ")
                handler.wfile.flush()
        elif seed == TRICKLE_HEADERS:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while not self.stop_event.wait(0.3):
                handler.wfile.write(b"X")
                handler.wfile.flush()
        else:
            handler._send(200, ok)

    def stop(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture
def server(model):
    started = ScriptedServer(str(model))
    yield started
    started.stop()


def _requests(*seeds: int) -> list[GenerationRequest]:
    return [GenerationRequest("p", "a question", list(range(len(seeds))), list(seeds), prompt_token_ids=[1, 2, 3])]


def _consume(engine, requests, sampling, seconds: float):
    """Run ``engine.generate`` in a thread: (batches with their arrival times, the error), or fail after ``seconds``."""
    batches: list[tuple[float, list]] = []
    outcome: dict = {}
    t0 = time.monotonic()

    def work() -> None:
        try:
            for result in engine.generate(requests, sampling):
                batches.append((time.monotonic() - t0, result))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"engine.generate still running after {seconds} s (batches so far: {len(batches)})"
    return batches, outcome.get("error"), outcome["seconds"]


# ---------------------------------------------------------------------------- 3. no text


@pytest.mark.parametrize("seed", [NO_TEXT, NULL_TEXT])
def test_choice_without_text_is_a_malformed_response(model, server, seed):
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "max_retries": 0})
    batches, error, _ = _consume(
        engine, _requests(seed), SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=16), 30
    )
    assert isinstance(error, ServerError), error
    assert "malformed response (no choices[0].text)" in str(error)
    assert batches == []  # nothing stored as an empty completion


# ---------------------------------------------------------------------------- 6. finished samples stored at once


def test_finished_samples_are_yielded_while_another_request_hangs(model, server):
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "max_retries": 0, "timeout": 10})
    waits: list[tuple[int, float]] = []
    engine.on_wait = lambda n, age: waits.append((n, age))
    batches, error, seconds = _consume(
        engine, _requests(1, 2, HANG, 3), SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=16), 40
    )
    first_at, first = batches[0]
    assert first_at < 6, f"first batch only after {first_at:.1f} s"  # before the hung request's deadline
    assert sorted(c.sample_index for c in first.completions) == [0, 1, 3]
    assert all(c.batch_id == first.timing.batch_id and c.text for c in first.completions)
    assert 0 < first.timing.wall_seconds < 6
    # the hung request fails at its deadline, with a message that says what to do
    assert isinstance(error, EngineError) and "within 10 s" in str(error) and "-o timeout" in str(error)
    assert 9 < seconds < 20
    # while it waited, the engine said so: one request in flight, its age growing
    ages = [age for n, age in waits if n == 1]
    assert ages and max(ages) > 5 and ages == sorted(ages)


def test_interrupted_run_keeps_every_finished_sample(model, server, data_dir, tmp_path):
    """Ctrl-C while one request hangs: the samples that came back are already in samples.jsonl."""
    from m1eval.pipeline.seeding import sample_seed

    # the server hangs on the request whose seed is that of problem 2, sample 1
    problems = [json.loads(line)["id"] for line in (data_dir / "aime25" / "test.jsonl").read_text().splitlines()[:2]]
    hang_seed = sample_seed(0, problems[1], 1)
    original = server.answer
    server.answer = lambda handler, seed: original(handler, HANG if seed == hang_seed else seed)
    args = [
        "run",
        "--model",
        str(model),
        "--engine",
        "openai",
        "--endpoint",
        server.url,
        "--task",
        "aime25",
        "--limit",
        "2",
        "--k",
        "2",
        "--max-tokens",
        "16",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--no-grade",
    ]
    process = subprocess.Popen(
        m1eval_cmd(*args), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        lines = 0
        while time.monotonic() < deadline and process.poll() is None:
            files = list(tmp_path.rglob("samples.jsonl"))
            lines = files[0].read_text().count("\n") if files else 0
            if lines >= 3:
                break
            time.sleep(0.1)
        assert lines == 3, f"finished samples were not stored while a request was in flight ({lines} lines)"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    assert "3/4 samples are kept" in " ".join(stderr.split())
    rows = raw_sample_lines(only_run_dir(tmp_path))
    assert sorted((r["problem_id"], r["sample_index"]) for r in rows) == [
        (problems[0], 0),
        (problems[0], 1),
        (problems[1], 0),
    ]


# ---------------------------------------------------------------------------- 7. total deadline, honest waiting


@pytest.mark.parametrize("seed", [TRICKLE_BODY, TRICKLE_HEADERS])
def test_trickling_server_hits_the_total_deadline(model, server, seed):
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "max_retries": 0, "timeout": 2})
    batches, error, seconds = _consume(
        engine, _requests(1, seed), SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=16), 30
    )
    assert isinstance(error, EngineError) and "within 2 s (total per request, retries included)" in str(error)
    assert seconds < 8  # a byte every 0.3 s reset the old between-bytes timeout forever
    assert [c.sample_index for _, b in batches for c in b.completions] == [0]


def test_default_deadline_scales_with_max_tokens(model, server, monkeypatch):
    assert 20 * 60 < default_timeout(32768) < 30 * 60  # a full-length answer at >= 20 tokens/s fits
    assert default_timeout(512) < 2 * 60  # a short run against a dead server fails within minutes
    # without -o timeout the default applies (shrunk here so the test is quick)
    monkeypatch.setattr(openai_engine, "BASE_DEADLINE", 1.0)
    monkeypatch.setattr(openai_engine, "MIN_TOKENS_PER_SECOND", 16.0)
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "max_retries": 0})
    _, error, seconds = _consume(
        engine, _requests(TRICKLE_BODY), SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=16), 30
    )
    assert isinstance(error, EngineError) and "within 2 s" in str(error) and seconds < 8


def test_retries_are_said_at_once(model, server):
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "max_retries": 2, "backoff": 0.01})
    notices: list[str] = []
    engine.on_notice = notices.append
    batches, error, _ = _consume(
        engine, _requests(FAIL_ONCE, 1), SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=16), 30
    )
    assert error is None and sum(len(b.completions) for _, b in batches) == 2
    assert notices and "1 request(s) retried" in notices[0] and "HTTP 503: warming up" in notices[0]


def test_eta_grows_while_nothing_finishes():
    from rich.progress import Progress

    from m1eval.cli.progress import HonestETAColumn, waiting_text

    now = [0.0]
    progress = Progress(get_time=lambda: now[0])
    task_id = progress.add_task("generate", total=20, completed=10, start_completed=10)
    now[0] = 10.0
    progress.update(task_id, advance=5)  # 5 samples in 10 s: 15 s left for 5 more
    task = progress.tasks[0]
    column = HonestETAColumn()
    assert column.render(task).plain == "0:00:10"
    now[0] = 300.0  # nothing finished for 290 s: the estimate must not stay at 10 s
    assert column.render(task).plain == "0:05:00"
    assert waiting_text(12, 245.0) == "12 waiting, oldest 4m05s" and waiting_text(0, 0.0) == ""
