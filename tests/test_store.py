"""Run folders: round trip, crash tolerance (truncated last line), single-writer lock, resume API."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from m1eval.records import BatchTiming, Completion, Grade, Problem
from m1eval.rundir.store import RunLockedError, RunStore, StoreError, find_runs, run_path, safe_name


def _completion(pid: str, index: int, text: str = "so \\boxed{7}") -> Completion:
    return Completion(
        problem_id=pid,
        sample_index=index,
        seed=1000 + index,
        text=text,
        prompt_tokens=12,
        completion_tokens=5,
        finish_reason="stop",
        batch_id="b0",
        prefix_chars={"4": 3, "5": len(text)},
    )


def test_run_path_is_readable_and_safe(tmp_path: Path) -> None:
    path = run_path(tmp_path, "aime25", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "t0.6-s0")
    assert path == tmp_path / "aime25" / "deepseek-ai--DeepSeek-R1-Distill-Qwen-1.5B" / "t0.6-s0"
    assert safe_name("../../etc") == "etc"


def test_round_trip(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"run_id": "r1", "task": {"name": "aime25"}})
    problems = [Problem("aime25", "2025-I-1", "q?", ["70"], "integer", {"contest": "AIME 2025 I"})]
    store.write_problems(problems)
    batch = [_completion("2025-I-1", i) for i in range(3)]
    timing = BatchTiming("b0", "vllm", 3, 1.5, 15, prompt_tokens=36)
    assert store.append_samples(batch, timing) == 3
    grades = [Grade("2025-I-1", i, "7", False, "ok", 0, "g1") for i in range(2)]
    grades.append(Grade("2025-I-1", 2, None, False, "no_answer", None, "g1"))
    store.write_grades(grades)
    store.set_stage("generate", "done", samples=3)
    store.unlock()

    reader = RunStore(tmp_path / "run")
    samples, report = reader.read_samples()
    assert samples == batch and not report.truncated_tail
    assert reader.read_batches()[0] == [timing]
    assert reader.read_problems() == problems
    assert reader.finished() == {("2025-I-1", 0), ("2025-I-1", 1), ("2025-I-1", 2)}
    frame = reader.read_grades()
    assert list(frame["cluster"].astype(object).where(frame["cluster"].notna(), None)) == [0, 0, None]
    assert frame["correct"].dtype == bool
    manifest = reader.read_manifest()
    assert manifest["run_id"] == "r1" and manifest["stages"]["generate"]["state"] == "done"


def test_truncated_last_line_is_reported_and_rest_kept(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"run_id": "r"})
    store.append_samples([_completion("p", i) for i in range(4)])
    store.unlock()
    path = tmp_path / "run" / "samples.jsonl"
    data = path.read_bytes()
    path.write_bytes(data + data.splitlines(keepends=True)[0][:40])  # a write cut off mid-line

    samples, report = RunStore(tmp_path / "run").read_samples()
    assert [s.sample_index for s in samples] == [0, 1, 2, 3]
    assert report.truncated_tail and "truncated" in report.summary()

    # The next writer cuts the partial line, so new records start on a clean line.
    writer = RunStore.create(tmp_path / "run")
    writer.append_samples([_completion("p", 4)])
    writer.unlock()
    samples, report = RunStore(tmp_path / "run").read_samples()
    assert [s.sample_index for s in samples] == [0, 1, 2, 3, 4] and not report.truncated_tail


def test_corrupt_middle_line_is_reported_not_fatal(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"run_id": "r"})
    store.append_samples([_completion("p", 0)])
    store.unlock()
    with (tmp_path / "run" / "samples.jsonl").open("a") as handle:
        handle.write("garbage\n")
        handle.write(json.dumps(_completion("p", 1).to_dict()) + "\n")
    samples, report = RunStore(tmp_path / "run").read_samples()
    assert [s.sample_index for s in samples] == [0, 1] and report.bad_lines == [2]


def test_duplicate_pairs_are_read_once(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"run_id": "r"})
    store.append_samples([_completion("p", 0, "first"), _completion("p", 0, "second")])
    samples, _ = store.read_samples()
    assert [s.text for s in samples] == ["first"]


def _hold_lock(path: str, ready, release) -> None:  # noqa: ANN001 - multiprocessing events
    store = RunStore.create(path, {"run_id": "held"})
    ready.set()
    release.wait(30)
    store.unlock()


def test_lock_stops_a_second_writer(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path / "run"), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            RunStore.create(tmp_path / "run")
    finally:
        release.set()
        holder.join(30)
    # Released: a new writer gets in.
    RunStore.create(tmp_path / "run").unlock()


def test_lock_is_released_when_the_writer_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from m1eval.rundir.store import RunStore
        RunStore.create({str(tmp_path / "run")!r}, {{"run_id": "k"}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -9
    RunStore.create(tmp_path / "run").unlock()


def test_writing_without_lock_is_refused(tmp_path: Path) -> None:
    RunStore.create(tmp_path / "run", {"run_id": "r"}).unlock()
    with pytest.raises(StoreError, match="needs the lock"):
        RunStore(tmp_path / "run").append_samples([_completion("p", 0)])


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a run folder"):
        RunStore(tmp_path).read_manifest()
    with pytest.raises(StoreError, match="no run folders"):
        find_runs([tmp_path])


def test_find_runs_walks_down(tmp_path: Path) -> None:
    for model in ("a", "b"):
        RunStore.create(run_path(tmp_path, "aime25", model, "r"), {"run_id": "r"}).unlock()
    assert [p.parent.name for p in find_runs([tmp_path])] == ["a", "b"]


def test_begin_and_end_keep_stage_states_and_the_run_clock(tmp_path: Path) -> None:
    """Two calls per stage: generation's begin starts the run's clock, then adds a resume; its end
    finishes it; other stages keep only their own state."""
    with RunStore.create(tmp_path / "run", {"run_id": "r"}) as store:
        store.begin("generate", expected=4)
        first = store.read_manifest()
        assert first["stages"]["generate"]["state"] == "running" and first["stages"]["generate"]["expected"] == 4
        assert first["started_at"] and first["resumed_at"] == [] and first["finished_at"] is None
        store.end("generate", "done", samples=4)
        done = store.read_manifest()
        assert done["stages"]["generate"] == {"state": "done", "at": done["stages"]["generate"]["at"], "samples": 4}
        assert done["finished_at"] >= first["started_at"]
        store.begin("generate", expected=8)
        resumed = store.read_manifest()
        assert resumed["started_at"] == first["started_at"] and len(resumed["resumed_at"]) == 1
        assert resumed["finished_at"] is None
        store.end("generate", "interrupted", samples=6)
        store.begin("grade", extraction="boxed")
        store.end("grade", "done", extraction="boxed")
        last = store.read_manifest()
        assert last["finished_at"] is None and last["stages"]["generate"]["state"] == "interrupted"
        assert last["stages"]["grade"]["state"] == "done" and len(last["resumed_at"]) == 1
        with pytest.raises(ValueError, match="not 'running'"):
            store.end("grade", "running")


def test_an_old_folder_with_one_metrics_field_loads_timings_and_scores_apart():
    """Before format_version 2, engine timings and verifier scores shared ``Completion.metrics``."""
    from m1eval.records import Completion

    old = {
        "problem_id": "p",
        "sample_index": 0,
        "seed": 1,
        "text": "x",
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "finish_reason": "stop",
        "batch_id": "b",
        "metrics": {"decode_seconds": 0.5, "queue_seconds": 0.1, "score": 0.9},
    }
    completion = Completion.from_dict(old)
    assert completion.timings == {"decode_seconds": 0.5, "queue_seconds": 0.1}
    assert completion.scores == {"score": 0.9}
    assert "metrics" not in completion.to_dict()
    assert Completion.from_dict({**old, "metrics": None}).timings is None
