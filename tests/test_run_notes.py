"""Issue 22.8: what a run says besides its numbers (an openai run against a local fake server).

- a reply far longer than ``max_tokens`` allows is stored, with a warning, and recorded in the
  manifest (and repeated by the report);
- ``--limit`` above the task's size says how many problems are run;
- the progress bar of a resumed run rates only what this command generates.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.run_helpers import only_run_dir, raw_sample_lines, tiny_model
from helpers.vllm_server import JSONHandler
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.pipeline.seeding import sample_seed

MAX_TOKENS = 16
HUGE = 1_000_000  # characters: 16 tokens decode to a few hundred at most


class Server:
    """Answers every completion with a short boxed text; ``huge_seeds`` get ``HUGE`` characters and a token
    count above the request's max_tokens, as a broken server might send."""

    def __init__(self, model: str) -> None:
        self.huge_seeds: set[int] = set()
        outer = self

        class Handler(JSONHandler):
            protocol_version = "HTTP/1.1"
            model_id = model

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                seed = int(body["seed"])
                if seed in outer.huge_seeds:
                    text, tokens = "9" * HUGE, body["max_tokens"] + 24
                else:
                    text, tokens = f" so \\boxed{{{seed % 7}}}", 6
                choice = {"index": 0, "text": text, "finish_reason": "length" if tokens >= 16 else "stop"}
                self._send(200, {"choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": tokens}})

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory)


@pytest.fixture
def server(model):
    started = Server(str(model))
    yield started
    started.stop()


def _run(model: Path, server: Server, data_dir: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["run", "--model", str(model), "--engine", "openai", "--endpoint", server.url, "--task", "aime25"]
    args += ["--max-tokens", str(MAX_TOKENS), "--data-dir", str(data_dir), "--out", str(out), "--no-grade", *extra]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    return result.exit_code, result.output


def _problem_ids(data_dir: Path, n: int) -> list[str]:
    lines = (data_dir / "aime25" / "test.jsonl").read_text().splitlines()[:n]
    return [json.loads(line)["id"] for line in lines]


def test_a_reply_longer_than_max_tokens_allows_is_stored_warned_and_recorded(model, server, data_dir, tmp_path):
    problems = _problem_ids(data_dir, 2)
    server.huge_seeds = {sample_seed(0, problems[1], 0)}
    code, output = _run(model, server, data_dir, tmp_path, "--limit", "2", "--k", "2")
    assert code == 0, output
    flat = " ".join(output.split())
    assert "warning: the engine sent a reply longer than max_tokens allows" in flat
    assert f"problem {problems[1]!r} sample 0" in flat and f"{HUGE:,} characters" in flat
    run = only_run_dir(tmp_path)
    rows = {(r["problem_id"], r["sample_index"]): r for r in raw_sample_lines(run)}
    assert len(rows) == 4 and len(rows[(problems[1], 0)]["text"]) == HUGE  # stored as sent
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["overlong_total"] == 1
    [record] = manifest["overlong"]
    assert (record["problem_id"], record["sample_index"], record["characters"]) == (problems[1], 0, HUGE)
    assert record["completion_tokens"] == MAX_TOKENS + 24 and record["max_tokens"] == MAX_TOKENS
    # the manifest's problem hashes are those of the stored problems (issue 22.4)
    from m1eval.rundir.golds import check_problems
    from m1eval.rundir.store import RunStore

    assert check_problems(manifest, RunStore(run).read_problems()).state == "verified"
    # kept when the run grows, and repeated by the report
    code, output = _run(model, server, data_dir, tmp_path, "--limit", "2", "--k", "3")
    assert code == 0, output
    assert json.loads((run / "manifest.json").read_text())["overlong_total"] == 1
    assert CliRunner().invoke(app, ["grade", str(run), "-w", "1"]).exit_code == 0
    report = CliRunner().invoke(app, ["report", str(run), "--sign-flips", "20"], env={"COLUMNS": "250"}).output
    assert "1 sample(s) longer than max_tokens allows" in report


def test_a_limit_above_the_task_size_says_how_many_are_run(model, server, data_dir, tmp_path):
    code, output = _run(model, server, data_dir, tmp_path, "--limit", "1000", "--k", "1")
    assert code == 0, output
    flat = " ".join(output.split())
    assert "note: --limit 1000 is more than the 30 problems of aime25: all 30 are run" in flat
    assert "0/30 samples stored" in flat
    code, output = _run(model, server, data_dir, tmp_path / "small", "--limit", "3", "--k", "1")
    assert code == 0 and "note:" not in output


def test_the_rate_of_a_resumed_run_counts_only_samples_generated_now() -> None:
    """1000 samples stored, 4 generated in about 0.6 s: about 7 completions/s, not 1,600."""
    from rich.console import Console

    from m1eval.cli.progress import HonestETAColumn, RateColumn, RunProgress

    progress = RunProgress(Console(file=io.StringIO(), width=200))
    progress.started(2000, 1000)
    for done in (2, 4):
        time.sleep(0.3)
        progress.progress(2, 20)
        progress.stored(done, 10 * done)
    assert progress._progress is not None
    task = progress._progress.tasks[0]
    rate = float(RateColumn("c").render(task).plain.split()[0].replace(",", ""))
    assert 0 < rate < 50, rate  # counting the 1000 stored would give ~1,600/s
    eta = HonestETAColumn().render(task).plain.split(":")
    assert int(eta[0]) * 3600 + int(eta[1]) * 60 + int(eta[2]) > 60  # 996 left at ~7/s, not ~0.6 s
    assert float(progress._rate().split()[0].replace(",", "")) < 500  # tok/s: 40 tokens in ~0.6 s
    progress.finished()
