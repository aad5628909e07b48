"""Resume: SIGKILL mid-generation loses nothing, duplicates nothing, and a larger k adds only what is missing.

The killed runs use the transformers engine (seconds to start, one sample per batch so
batches land often); the resume logic under test is the runner's, the same for every engine.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest
from helpers.run_helpers import REPO, cli_env, m1eval_cmd, only_run_dir, raw_sample_lines, run_cli, tiny_model

from m1eval.engines import ENGINES
from m1eval.engines.base import BatchResult, EngineBase, EngineOutOfMemory, GenerationRequest
from m1eval.pipeline.runner import RunConfig, generate, plan_run
from m1eval.records import BatchTiming, Completion, SamplingConfig

pytestmark = pytest.mark.slow


def _args(model, data_dir, out, k):
    return [
        "run",
        "--model",
        str(model),
        "--engine",
        "hf",
        "--task",
        "aime25",
        "--limit",
        "3",
        "--k",
        str(k),
        "--max-tokens",
        "48",
        "--temperature",
        "0.9",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "-o",
        "batch_size=1",
        "--chunk-size",
        "1",
        "--no-grade",
    ]


def _start_and_stop(model, data_dir, out, sig, at_least=2):
    process = subprocess.Popen(
        m1eval_cmd(*_args(model, data_dir, out, 4)),
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        samples = list(out.rglob("samples.jsonl"))
        if samples and samples[0].read_text().count("\n") >= at_least:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be stopped:\n" + process.stderr.read()[-2000:]
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(model, data_dir, tmp_path_factory):
    """An uninterrupted run of the same settings (in-process): what the resumed run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    config = RunConfig(
        model=str(model),
        task="aime25",
        k=4,
        engine="hf",
        limit=3,
        max_tokens=48,
        temperature=0.9,
        data_dir=data_dir,
        out=out,
        engine_options={"batch_size": 4},
    )
    outcome = generate(plan_run(config))
    assert outcome.state == "done", outcome.message
    return {(r["problem_id"], r["sample_index"]): r["text"] for r in raw_sample_lines(outcome.path)}


def test_sigkill_then_resume_then_grow_k(model, data_dir, tmp_path, reference):
    code, _ = _start_and_stop(model, data_dir, tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    run_dir = only_run_dir(tmp_path)
    before = raw_sample_lines(run_dir)
    assert 2 <= len(before) < 12

    resumed = run_cli(*_args(model, data_dir, tmp_path, 4))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = raw_sample_lines(run_dir)
    keys = [(r["problem_id"], r["sample_index"]) for r in after]
    assert len(keys) == len(set(keys)) == 12  # nothing lost, nothing twice
    assert after[: len(before)] == before  # finished samples untouched
    # same texts as an uninterrupted run with another batch size
    assert {k: r["text"] for k, r in zip(keys, after)} == reference

    grown = run_cli(*_args(model, data_dir, tmp_path, 8))
    assert grown.returncode == 0, grown.stderr[-3000:]
    rows = raw_sample_lines(run_dir)
    assert rows[:12] == after
    new = [(r["problem_id"], r["sample_index"]) for r in rows[12:]]
    assert len(new) == len(set(new)) == 12 and {i for _, i in new} == {4, 5, 6, 7}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["sampling"]["n"] == 8 and manifest["stages"]["generate"]["state"] == "done"
    assert len(manifest["resumed_at"]) == 2


def test_sigterm_stops_cleanly(model, data_dir, tmp_path):
    code, stderr = _start_and_stop(model, data_dir, tmp_path, signal.SIGTERM)
    assert code == 130, stderr[-2000:]
    run_dir = only_run_dir(tmp_path)
    rows = raw_sample_lines(run_dir)  # parses every line: no partial write
    assert 2 <= len(rows) < 12
    assert f"{len(rows)}/12 samples are kept" in " ".join(stderr.split())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["state"] == "interrupted"


class OutOfMemoryAfterOneBatch(EngineBase):
    """Stands in for an accelerator running out of memory, which cannot happen on this machine."""

    name = "oom-test"
    calls = 0

    def __init__(self, model: str, *, options: dict | None = None) -> None:
        self.model = model

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        type(self).calls += 1
        if type(self).calls > 1:
            raise EngineOutOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB")
        completions = [
            Completion(r.problem_id, i, s, "x \\boxed{1}", 5, 4, "stop", "b1")
            for r in requests
            for i, s in zip(r.sample_indices, r.seeds)
        ]
        yield BatchResult(completions, BatchTiming("b1", self.name, len(completions), 0.1, 4 * len(completions)))

    def close(self) -> None:
        pass


def test_engine_oom_keeps_finished_samples(model, data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(ENGINES, "oom-test", f"{__name__}:OutOfMemoryAfterOneBatch")
    config = RunConfig(
        model=str(model),
        task="aime25",
        k=2,
        engine="oom-test",
        limit=3,
        data_dir=data_dir,
        out=tmp_path,
        max_tokens=16,
        chunk_size=2,
    )
    outcome = generate(plan_run(config))
    assert outcome.state == "failed"
    assert "out of memory" in outcome.message and "2/6 samples are kept" in outcome.message
    run_dir = only_run_dir(tmp_path)
    assert len(raw_sample_lines(run_dir)) == 2
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["generate"]["state"] == "failed"
