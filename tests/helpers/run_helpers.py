"""Helpers shared by the run/engine tests: the tiny model, CLI subprocesses, run-folder checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from m1eval.models.tiny import shared_tiny_qwen2

REPO = Path(__file__).resolve().parents[2]


def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_qwen2(tmp_path_factory.getbasetemp() / "shared")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def m1eval_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "m1eval", *args]


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        m1eval_cmd(*args), check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=cli_env()
    )


def only_run_dir(out: Path) -> Path:
    runs = [p.parent for p in out.rglob("manifest.json")]
    assert len(runs) == 1, f"expected one run folder under {out}, found {runs}"
    return runs[0]


def raw_sample_lines(run_dir: Path) -> list[dict]:
    path = run_dir / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_run_folder(run_dir: Path, *, problems: int, k: int, max_tokens: int, engine: str) -> list[dict]:
    """The contract every engine's run folder must meet; returns the sample rows."""
    rows = raw_sample_lines(run_dir)
    keys = [(r["problem_id"], r["sample_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == problems * k, keys
    assert {i for _, i in keys} == set(range(k))
    for row in rows:
        assert 0 < row["completion_tokens"] <= max_tokens
        assert row["prompt_tokens"] > 0
        assert row["finish_reason"] in ("stop", "length")
        if row["finish_reason"] == "length":
            assert row["completion_tokens"] == max_tokens
        assert row["prefix_chars"][str(row["completion_tokens"])] == len(row["text"])
    seeds = {r["seed"] for r in rows}
    assert len(seeds) == len(rows), "every (problem, sample) must have its own seed"
    batches = [json.loads(line) for line in (run_dir / "batches.jsonl").read_text().splitlines()]
    assert batches and all(b["engine"] == engine and b["wall_seconds"] > 0 for b in batches)
    assert sum(b["generated_tokens"] for b in batches) == sum(r["completion_tokens"] for r in rows)
    assert {r["batch_id"] for r in rows} <= {b["batch_id"] for b in batches}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["engine"]["name"] == engine
    assert manifest["sampling"]["n"] == k and manifest["sampling"]["max_tokens"] == max_tokens
    assert manifest["stages"]["generate"]["state"] == "done"
    for key in ("run_id", "task", "model", "prompt", "versions", "host", "started_at", "finished_at"):
        assert manifest.get(key) is not None, key
    problems_file = (run_dir / "problems.jsonl").read_text().splitlines()
    assert len(problems_file) == problems
    return rows


def check_graded(run_dir: Path, stdout: str, n_samples: int) -> None:
    import pandas as pd

    grades = pd.read_parquet(run_dir / "grades.parquet")
    assert len(grades) == n_samples
    assert set(grades["status"]) <= {"ok", "no_answer", "truncated", "timeout", "unparsable"}
    assert "aime25" in stdout, stdout


def collect_completions(engine, requests, sampling) -> dict:  # noqa: ANN001 - any Engine
    """All completions an engine yields, by (problem, sample); a pair yielded twice fails the test."""
    out = {}
    for result in engine.generate(requests, sampling):
        for completion in result.completions:
            assert completion.key not in out, f"{completion.key} yielded twice"
            out[completion.key] = completion
    return out


def assert_completion_record(c, max_tokens: int) -> None:  # noqa: ANN001 - a Completion
    """What every engine's Completion must satisfy: tokens, finish reason, prefix offsets."""
    assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= max_tokens
    assert c.finish_reason in ("stop", "length")
    if c.finish_reason == "length":
        assert c.completion_tokens == max_tokens
    assert c.prefix_chars[str(c.completion_tokens)] == len(c.text)
