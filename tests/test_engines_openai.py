"""The openai engine against a real ``vllm serve`` on 127.0.0.1 (one server for the module).

Also the end-to-end ``m1eval run --engine openai`` and the failure paths: no endpoint, an
unreachable endpoint, a server that refuses a request, a replica that keeps failing.
"""

from __future__ import annotations

import json

import pytest
from helpers.run_helpers import (
    check_graded,
    check_run_folder,
    collect_completions,
    only_run_dir,
    raw_sample_lines,
    run_cli,
    tiny_model,
)
from helpers.vllm_server import FailingServer, VLLMServer, free_port

from m1eval.engines.base import EngineError, GenerationRequest
from m1eval.engines.openai import OpenAIEngine, ServerError
from m1eval.records import SamplingConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    started = VLLMServer(model, tmp_path_factory.mktemp("serve") / "vllm-serve.log")
    yield started
    started.stop()


@pytest.fixture
def failing(model):
    replica = FailingServer(str(model))
    yield replica
    replica.stop()


def _requests():
    return [
        GenerationRequest("a", "the sum of all integer", [0, 1, 2], [11, 12, 13]),
        GenerationRequest("b", "circle radius area", [0, 1], [21, 22]),
    ]


def test_seeded_completions(server, model):
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "concurrency": 4})
    try:
        sampling = SamplingConfig(temperature=0.8, top_p=0.95, max_tokens=16)
        first = collect_completions(engine, _requests(), sampling)
        again = collect_completions(engine, list(reversed(_requests())), sampling)
    finally:
        engine.close()
    assert set(first) == {("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)}
    assert {k: c.text for k, c in first.items()} == {k: c.text for k, c in again.items()}
    assert len({first[("a", i)].text for i in range(3)}) == 3
    for c in first.values():
        assert 0 < c.completion_tokens <= 16 and c.finish_reason in ("stop", "length")
        assert c.prefix_chars[str(c.completion_tokens)] == len(c.text)


def test_retries_move_to_a_healthy_endpoint(server, model, failing):
    engine = OpenAIEngine(
        str(model), options={"endpoints": [failing.url, server.url], "backoff": 0.01, "max_retries": 3}
    )
    try:
        got = collect_completions(engine, _requests(), SamplingConfig(temperature=0.7, top_p=0.95, max_tokens=8))
    finally:
        engine.close()
    assert len(got) == 5
    assert failing.hits >= 2  # round-robin sent work to the broken replica, retries recovered it


def test_failing_server_gives_a_clear_error(model, failing):
    engine = OpenAIEngine(str(model), options={"endpoints": [failing.url], "backoff": 0.01, "max_retries": 1})
    try:
        with pytest.raises(EngineError, match="failed after 2 attempts.*HTTP 503.*replica overloaded"):
            collect_completions(engine, _requests(), SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=8))
    finally:
        engine.close()


def test_refused_request_is_not_retried(server, model):
    engine = OpenAIEngine(str(model), options={"endpoints": [server.url], "max_retries": 5})
    try:
        with pytest.raises(ServerError, match="HTTP 400"):
            collect_completions(
                engine, _requests()[:1], SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=100_000)
            )
    finally:
        engine.close()


def test_missing_or_unreachable_endpoint(model):
    with pytest.raises(EngineError, match="openai: the openai engine needs an endpoint"):
        OpenAIEngine(str(model))
    with pytest.raises(EngineError, match="cannot reach endpoint http://127.0.0.1"):
        OpenAIEngine(str(model), options={"endpoints": [f"127.0.0.1:{free_port()}"]})


def test_wrong_model_name(server, model):
    with pytest.raises(EngineError, match="does not serve 'other-model'"):
        OpenAIEngine(str(model), options={"endpoints": [server.url], "served_model": "other-model"})


def test_run_end_to_end_then_server_errors_keep_samples(server, model, failing, data_dir, tmp_path):
    common = [
        "run",
        "--model",
        str(model),
        "--engine",
        "openai",
        "--task",
        "aime25",
        "--limit",
        "3",
        "--max-tokens",
        "32",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
    ]
    result = run_cli(*common, "--k", "4", "--endpoint", server.url)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    rows = check_run_folder(run_dir, problems=3, k=4, max_tokens=32, engine="openai")
    check_graded(run_dir, result.stdout, 12)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["engine"]["options"]["endpoints"] == [server.url]
    assert manifest["host"]["accelerator"].startswith("remote")

    broken = run_cli(*common, "--k", "8", "--endpoint", failing.url, "-o", "max_retries=1", "-o", "backoff=0.01")
    assert broken.returncode == 1
    message = " ".join(broken.stderr.split())
    assert "replica overloaded" in message and "12/24 samples are kept" in message, message
    assert raw_sample_lines(run_dir) == rows
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["state"] == "failed"


def test_run_without_endpoint_is_a_clear_error(model, data_dir, tmp_path):
    result = run_cli(
        "run",
        "--model",
        str(model),
        "--engine",
        "openai",
        "--task",
        "aime25",
        "--limit",
        "1",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--no-grade",
    )
    assert result.returncode != 0
    assert "openai: the openai engine needs an endpoint" in " ".join(result.stderr.split())
    assert not any(tmp_path.iterdir())  # refused before a folder is made
