"""Planning a run: run ids without k, missing-sample requests, chunks, bad input messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines.base import EngineError, chunk_requests
from m1eval.models.presets import resolve_model
from m1eval.pipeline import runner
from m1eval.pipeline.runner import RunConfig, RunError, derive_run_id, identity, pending_requests, plan_run
from m1eval.pipeline.seeding import sample_seed
from m1eval.records import SamplingConfig
from m1eval.tasks.loader import TaskError, load_task


def _config(data_dir: Path, tmp_path: Path, **changes) -> RunConfig:
    base = {
        "model": "r1-qwen-1.5b",
        "task": "aime25",
        "k": 4,
        "limit": 3,
        "data_dir": data_dir,
        "out": tmp_path,
        "max_tokens": 32,
    }
    base.update(changes)
    return RunConfig(**base)


def test_run_id_ignores_k_but_not_sampling(data_dir, tmp_path):
    four = plan_run(_config(data_dir, tmp_path))
    eight = plan_run(_config(data_dir, tmp_path, k=8))
    assert four.path == eight.path and four.path.parts[-3:-1] == ("aime25", "r1-qwen-1.5b")
    assert four.sampling.temperature == 0.6 and four.sampling.top_p == 0.95 and four.k == 4
    assert plan_run(_config(data_dir, tmp_path, temperature=0.8)).path != four.path
    assert plan_run(_config(data_dir, tmp_path, seed=1)).path != four.path
    assert plan_run(_config(data_dir, tmp_path, limit=4)).path != four.path
    # speed-only options keep the run; options that change the text do not
    assert plan_run(_config(data_dir, tmp_path, engine_options={"max_num_seqs": 8})).path == four.path
    assert plan_run(_config(data_dir, tmp_path, engine_options={"dtype": "float16"})).path != four.path
    assert plan_run(_config(data_dir, tmp_path, run_id="mine")).path.name == "mine"
    assert [p.id for p in four.problems] == [p.id for p in load_task("aime25", data_dir)[:3]]


EXAMPLE = Path(__file__).resolve().parents[1] / "results/math500/smollm2-135m/levels1-2-t0.7-p1-max320/manifest.json"


def test_stored_run_keeps_its_identity_now_that_k_is_the_plans(data_dir, tmp_path, monkeypatch):
    """k moved from SamplingConfig.n to the run plan: a stored run's identity (and so the id a
    plan derives from it) must come out the same, and its manifest (sampling.n) must still read."""
    manifest = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    k = manifest["sampling"]["n"]
    assert SamplingConfig.from_dict(manifest["sampling"]).to_dict() == manifest["identity"]["sampling"]
    monkeypatch.setattr(runner, "resolve_model", lambda name, engine=None: resolve_model(name, engine, build=False))
    plan = plan_run(
        RunConfig(
            model="smollm2-135m",
            task="math500",
            k=k,
            temperature=0.7,
            top_p=1.0,
            max_tokens=320,
            data_dir=data_dir,
            out=tmp_path,
        )
    )
    assert plan.k == k and "n" not in plan.sampling.to_dict()
    assert (
        identity(plan.model, "math500", None, plan.sampling, plan.suffix, plan.engine_options, plan.join)
        == manifest["identity"]
    )
    assert plan.run_id == derive_run_id(manifest["identity"])


def test_pending_requests_only_missing_with_stable_seeds(data_dir, tmp_path):
    plan = plan_run(_config(data_dir, tmp_path))
    prompts = {p.id: (p.question, [1, 2, 3]) for p in plan.problems}
    first = plan.problems[0].id
    finished = {(first, 0), (first, 2)}
    requests = pending_requests(plan.problems, prompts, finished, 4, 7)
    assert requests[0].sample_indices == [1, 3]
    assert requests[0].seeds == [sample_seed(7, first, 1), sample_seed(7, first, 3)]
    assert [len(r.sample_indices) for r in requests] == [2, 4, 4]
    grown = pending_requests(plan.problems, prompts, finished, 8, 7)
    assert grown[0].sample_indices == [1, 3, 4, 5, 6, 7] and grown[0].seeds[:2] == requests[0].seeds


def test_chunks_hold_whole_problems(data_dir, tmp_path):
    plan = plan_run(_config(data_dir, tmp_path))
    prompts = {p.id: (p.question, [1]) for p in plan.problems}
    requests = pending_requests(plan.problems, prompts, set(), 4, 0)
    assert [len(c) for c in chunk_requests(requests, 8)] == [2, 1]
    assert [len(c) for c in chunk_requests(requests, 1)] == [1, 1, 1]  # a problem is never split
    assert [len(c) for c in chunk_requests(requests, 100)] == [3]


def test_bad_input_fails_before_loading_anything(data_dir, tmp_path):
    with pytest.raises(TaskError, match="unknown task 'nope'"):
        plan_run(_config(data_dir, tmp_path, task="nope"))
    with pytest.raises(EngineError, match="unknown engine 'tpu'"):
        plan_run(_config(data_dir, tmp_path, engine="tpu"))
    with pytest.raises(RunError, match="k \\(samples per problem\\) must be at least 1"):
        plan_run(_config(data_dir, tmp_path, k=0))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "no-such-model", "--task", "aime25"], "unknown model 'no-such-model'"),
        (["--model", "r1-qwen-1.5b", "--task", "nope"], "unknown task 'nope'"),
        (["--model", "r1-qwen-1.5b", "--task", "aime25", "--engine", "tpu"], "unknown engine 'tpu'"),
        (["--model", "r1-qwen-1.5b", "--task", "aime25", "-o", "novalue"], "expected key=value"),
    ],
)
def test_cli_bad_input_messages(args, message, data_dir, tmp_path):
    result = CliRunner().invoke(
        app, ["run", *args, "--data-dir", str(data_dir), "--out", str(tmp_path)], env={"COLUMNS": "250"}
    )
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert not any(tmp_path.rglob("samples.jsonl"))
