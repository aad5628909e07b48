"""`m1eval run --replicas N`: engines as Ray actors on a real local Ray, equal texts, nothing lost or doubled.

Ray runs for real here (a local instance with 2 CPUs, no dashboard); what these tests
cannot have is a GPU or a second node, so GPUs per replica stay 0 and "a node lost" is
played by killing an actor's process. The unit tests at the top need no Ray at all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers.run_helpers import (
    REPO,
    check_run_folder,
    cli_env,
    m1eval_cmd,
    only_run_dir,
    raw_sample_lines,
    run_cli,
    tiny_model,
)

from m1eval.engines.base import GenerationRequest
from m1eval.engines.replicas import (
    ReplicaError,
    ReplicaPool,
    ReplicaSettings,
    _host_port,
    _remaining,
    check_ray_address,
    default_chunk_samples,
    import_ray,
    split_requests,
)
from m1eval.models.tiny_hybrid import build_tiny_hybrid
from m1eval.pipeline.runner import RunConfig, generate, plan_run

LIMIT, K, MAX_TOKENS, TEMPERATURE = 3, 4, 48, 0.9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _texts(run_dir) -> dict[tuple[str, int], str]:
    rows = raw_sample_lines(run_dir)
    keys = [(r["problem_id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)), "a sample was stored twice"
    return {(r["problem_id"], r["sample_index"]): r["text"] for r in rows}


# ---------------------------------------------------------------------------- no Ray needed


def test_addresses_parse_and_refuse_nonsense():
    assert _host_port("10.0.0.5") == ("10.0.0.5", 6379)
    assert _host_port("head:6380") == ("head", 6380)
    assert _host_port("ray://head") == ("head", 10001)
    assert _host_port("[::1]:7000") == ("::1", 7000)
    assert _host_port("auto") is None
    for bad in ("http://head:80", "head:port", "head:70000", ":6379"):
        with pytest.raises(ReplicaError, match="Ray address"):
            _host_port(bad)


def test_unreachable_address_fails_in_seconds():
    port = _free_port()
    t0 = time.monotonic()
    with pytest.raises(ReplicaError, match=f"cannot reach a Ray head at 127.0.0.1:{port}"):
        check_ray_address(f"127.0.0.1:{port}")
    assert time.monotonic() - t0 < 2


def test_chunks_keep_whole_problems_and_requeue_only_what_is_missing():
    requests = [GenerationRequest(f"p{i}", "q", [0, 1, 2], [10 * i, 10 * i + 1, 10 * i + 2]) for i in range(5)]
    chunks = split_requests(requests, 7)
    assert [[r.problem_id for r in c] for c in chunks] == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    assert [r for c in split_requests(requests, 1) for r in c] == requests  # one problem at least
    left = _remaining(chunks[0], {("p0", 0), ("p0", 2), ("p1", 0), ("p1", 1), ("p1", 2)})
    assert left == [GenerationRequest("p0", "q", [1], [1])]  # the seed travels with its sample
    assert default_chunk_samples(1000, 2, 512) == 125 and default_chunk_samples(100_000, 2, 512) == 512
    assert default_chunk_samples(3, 8, 512) == 1


def test_settings_and_missing_ray_are_clear_errors(monkeypatch):
    with pytest.raises(ReplicaError, match="replicas must be at least 1"):
        ReplicaSettings(replicas=0)
    with pytest.raises(ReplicaError, match="gpus_per_replica"):
        ReplicaSettings(replicas=2, gpus_per_replica=-1)
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(ReplicaError, match=r"pip install \"m1eval\[ray\]\""):
        import_ray()
    with pytest.raises(ReplicaError, match="not 'openai'"):
        ReplicaPool("openai", "m", {}, ReplicaSettings(replicas=2))


def test_cli_refuses_ray_flags_without_replicas(data_dir, tmp_path):
    result = run_cli("run", "--model", "x", "--engine", "hf", "--task", "aime25", "--ray-address", "auto",
                     "--data-dir", str(data_dir), "--out", str(tmp_path), timeout=120)  # fmt: skip
    assert result.returncode == 2 and "need --replicas" in result.stderr, result.stderr[-2000:]


def test_cli_bad_ray_address_errors_fast(data_dir, tmp_path_factory, tmp_path):
    model = tiny_model(tmp_path_factory)
    port = _free_port()
    t0 = time.monotonic()
    result = run_cli("run", "--model", str(model), "--engine", "hf", "--task", "aime25", "--limit", "1",
                     "--data-dir", str(data_dir), "--out", str(tmp_path), "--replicas", "2",
                     "--ray-address", f"127.0.0.1:{port}", "--no-grade", timeout=120)  # fmt: skip
    elapsed = time.monotonic() - t0
    assert result.returncode == 2, result.stderr[-2000:]
    message = " ".join(result.stderr.split())
    assert f"cannot reach a Ray head at 127.0.0.1:{port}" in message and "ray start --head" in message
    assert "Traceback" not in result.stderr
    # the probe takes milliseconds; the rest is Python, torch and the tokenizer starting on a shared CPU
    assert elapsed < 60, elapsed


# ---------------------------------------------------------------------------- real Ray


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(model, data_dir, tmp_path_factory):
    """The same run in one process, no Ray: what every replica run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    config = RunConfig(
        model=str(model),
        task="aime25",
        k=K,
        engine="hf",
        limit=LIMIT,
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
        data_dir=data_dir,
        out=out,
        engine_options={"batch_size": 4},
    )
    outcome = generate(plan_run(config))
    assert outcome.state == "done", outcome.message
    return _texts(outcome.path)


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for the in-process tests (pools reuse it and leave it running)."""
    ray = import_ray()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _run_args(model, data_dir, out, *extra):
    return ["run", "--model", str(model), "--engine", "hf", "--task", "aime25", "--limit", str(LIMIT), "--k", str(K),
            "--max-tokens", str(MAX_TOKENS), "--temperature", str(TEMPERATURE), "--data-dir", str(data_dir),
            "--out", str(out), "--no-grade", *extra]  # fmt: skip


@pytest.mark.slow
def test_two_hf_replicas_equal_one_process(model, data_dir, reference, tmp_path):
    result = run_cli(*_run_args(model, data_dir, tmp_path, "--replicas", "2", "-o", "batch_size=2"))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    check_run_folder(run_dir, problems=LIMIT, k=K, max_tokens=MAX_TOKENS, engine="hf")
    assert _texts(run_dir) == reference
    effective = json.loads((run_dir / "manifest.json").read_text())["engine"]["effective_options"]
    assert effective["replicas"] == 2 and effective["ray_address"] == "local" and effective["batch_size"] == 2


@pytest.mark.slow
def test_two_m1_replicas_equal_one_process(data_dir, tmp_path, local_ray):
    hybrid = build_tiny_hybrid(tmp_path / "tiny-m1", d_model=64)

    def run(out, engine=None):
        config = RunConfig(
            model=str(hybrid),
            task="aime25",
            k=3,
            engine="m1",
            limit=LIMIT,
            max_tokens=16,
            temperature=0.8,
            data_dir=data_dir,
            out=out,
            engine_options={"max_batch": 2},
        )
        outcome = generate(plan_run(config), engine=engine)
        assert outcome.state == "done", outcome.message
        return _texts(outcome.path)

    single = run(tmp_path / "single")
    pool = ReplicaPool("m1", str(hybrid), {"max_batch": 2}, ReplicaSettings(replicas=2), chunk_size=1)
    try:
        replicated = run(tmp_path / "replicas", engine=pool)
    finally:
        pool.close()
    assert len(single) == 3 * LIMIT and replicated == single
    assert sorted(pool.stats.per_replica) == [0, 1], pool.stats  # both replicas drew samples
    assert pool.stats.actors_died == 0 and pool.stats.duplicates_dropped == 0


@pytest.mark.slow
def test_actor_killed_mid_chunk_loses_and_duplicates_nothing(model, data_dir, reference, tmp_path, local_ray):
    pool = ReplicaPool("hf", str(model), {"batch_size": 1}, ReplicaSettings(replicas=2), chunk_size=K)
    killed: dict = {}

    def kill_mid_chunk() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            for work in pool.busy():
                if 1 <= work["received"] < work["samples"]:
                    os.kill(work["pid"], signal.SIGKILL)
                    killed.update(work)
                    return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_mid_chunk, daemon=True)
    watcher.start()
    config = RunConfig(
        model=str(model),
        task="aime25",
        k=K,
        engine="hf",
        limit=LIMIT,
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
        data_dir=data_dir,
        out=tmp_path,
        engine_options={"batch_size": 1},
    )
    try:
        outcome = generate(plan_run(config), engine=pool)
    finally:
        watcher.join(timeout=5)
        pool.close()
    assert killed, "no chunk was caught half-done: nothing was killed"
    assert outcome.state == "done", outcome.message
    stats = pool.stats
    print(
        f"fault test: killed replica {killed['index']} (pid {killed['pid']}) with {killed['received']}/"
        f"{killed['samples']} samples of its chunk back; {stats}"
    )
    assert stats.actors_died == 1 and stats.chunks_requeued == 1
    # at most the dead actor's chunk is drawn again, and never what it had already sent back
    assert 1 <= stats.samples_requeued <= killed["samples"] - killed["received"]
    assert stats.duplicates_dropped == 0 and stats.samples == LIMIT * K
    assert _texts(outcome.path) == reference  # every sample exactly once, with its single-process text
    assert outcome.generated == outcome.stored == LIMIT * K


def _start(model, data_dir, out):
    return subprocess.Popen(m1eval_cmd(*_run_args(model, data_dir, out, "--replicas", "2", "-o", "batch_size=1",
                                                  "--chunk-size", "2")),
                            cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for_samples(process, out, at_least):
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        samples = list(out.rglob("samples.jsonl"))
        if samples and samples[0].read_text().count("\n") >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the run ended before it could be stopped:\n" + process.stderr.read()[-3000:])


def _descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def _alive(processes) -> list:
    import psutil

    out = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {p.name()}")
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow
def test_ctrl_c_stops_actors_and_ray_cleanly(model, data_dir, tmp_path):
    process = _start(model, data_dir, tmp_path)
    _wait_for_samples(process, tmp_path, 2)
    ray_processes = _descendants(process.pid)
    assert any("Replica" in p.name() or "ray::" in p.name() for p in ray_processes), [p.name() for p in ray_processes]
    t0 = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    stopped_in = time.monotonic() - t0
    deadline = time.monotonic() + 30
    while _alive(ray_processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(ray_processes), f"left running after Ctrl-C: {_alive(ray_processes)}"
    rows = raw_sample_lines(only_run_dir(tmp_path))
    keys = [(r["problem_id"], r["sample_index"]) for r in rows]
    assert 2 <= len(keys) == len(set(keys)) < LIMIT * K
    assert "samples are kept" in " ".join(stderr.split()) and "Traceback" not in stderr
    assert stopped_in < 60, stopped_in


@pytest.mark.slow
def test_driver_killed_mid_run_resumes_exactly_once(model, data_dir, reference, tmp_path):
    process = _start(model, data_dir, tmp_path)
    _wait_for_samples(process, tmp_path, 2)
    ray_processes = _descendants(process.pid)
    process.kill()
    process.communicate(timeout=60)
    for leftover in _alive(ray_processes):  # Ray's agents outlive a SIGKILLed driver: end the ones we started
        os.kill(int(leftover.split()[0]), signal.SIGKILL)
    run_dir = only_run_dir(tmp_path)
    before = raw_sample_lines(run_dir)
    assert 2 <= len(before) < LIMIT * K
    result = run_cli(*_run_args(model, data_dir, tmp_path, "--replicas", "2", "-o", "batch_size=2"))
    assert result.returncode == 0, result.stderr[-3000:]
    after = raw_sample_lines(run_dir)
    assert after[: len(before)] == before  # stored samples are kept as they were
    assert _texts(run_dir) == reference


@pytest.fixture
def ray_head(tmp_path):
    """A Ray cluster of one node started the way the README's multi-node recipe starts the head."""
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                             "--include-dashboard=false", "--disable-usage-stats"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                check_ray_address(f"127.0.0.1:{port}", timeout_s=1)
                break
            except ReplicaError:
                assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        processes = _descendants(head.pid)
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        deadline = time.monotonic() + 20
        while _alive(processes) and time.monotonic() < deadline:
            time.sleep(0.5)
        for leftover in _alive(processes):
            os.kill(int(leftover.split()[0]), signal.SIGKILL)


@pytest.mark.slow
def test_joins_a_running_cluster(model, data_dir, reference, tmp_path, ray_head):
    address, env = ray_head
    args = _run_args(model, data_dir, tmp_path, "--replicas", "2", "--ray-address", address, "-o", "batch_size=2")
    result = subprocess.run(m1eval_cmd(*args), check=False, cwd=REPO, env={**cli_env(), **env}, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    assert _texts(run_dir) == reference
    effective = json.loads((run_dir / "manifest.json").read_text())["engine"]["effective_options"]
    assert effective["ray_address"] == address and effective["replicas"] == 2
