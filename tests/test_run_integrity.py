"""Run integrity (issue 11): no resume that mixes data, engine options checked before any folder
is touched, no silent torn-line repair, a huge --k refused and planned lazily, an honest manifest n.

The generating engine here is a stand-in that answers at once (the runner's logic is under
test, not an engine); prompts are rendered with the tiny model's real tokenizer.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest
from helpers.run_helpers import only_run_dir, raw_sample_lines, tiny_model
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines import ENGINES, validate_options
from m1eval.engines.base import BatchResult, EngineBase, EngineError, GenerationRequest
from m1eval.engines.options import OptionSpec
from m1eval.pipeline.runner import MAX_K, RunConfig, RunError, SilentObserver, generate, iter_pending, plan_run
from m1eval.records import BatchTiming, Completion, SamplingConfig

ENGINE = "instant-test"


class InstantEngine(EngineBase):
    """Answers every request at once with a fixed boxed answer; can raise after N calls."""

    name = ENGINE
    option_specs: ClassVar[dict[str, OptionSpec]] = {"width": OptionSpec("int", 1), "tokenizer": OptionSpec("str")}
    interrupt_after: int | None = None
    calls = 0

    def __init__(self, model: str, *, options: dict | None = None) -> None:
        self.model = model

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        type(self).calls += 1
        if self.interrupt_after is not None and type(self).calls > self.interrupt_after:
            raise KeyboardInterrupt
        completions = [
            Completion(r.problem_id, i, s, "so \\boxed{1}", len(r.prompt_token_ids or []), 3, "stop", "b")
            for r in requests
            for i, s in zip(r.sample_indices, r.seeds)
        ]
        yield BatchResult(completions, BatchTiming("b", self.name, len(completions), 0.01, 3 * len(completions)))

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(autouse=True)
def instant_engine(monkeypatch):
    monkeypatch.setitem(ENGINES, ENGINE, f"{__name__}:InstantEngine")
    InstantEngine.calls = 0
    InstantEngine.interrupt_after = None


def _config(model, data_dir, out, **changes) -> RunConfig:
    base = {
        "model": str(model),
        "task": "aime25",
        "k": 2,
        "engine": ENGINE,
        "limit": 3,
        "data_dir": data_dir,
        "out": out,
        "max_tokens": 16,
    }
    base.update(changes)
    return RunConfig(**base)


def _folder_state(root) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"
    }


def _changed_data(data_dir, tmp_path, row: int = 1):
    """A copy of aime25 with the question of one row changed (what --allow-unpinned lets through)."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir / "aime25", copy / "aime25")
    path = copy / "aime25" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    key = next(k for k in ("problem", "question") if k in rows[row])
    rows[row][key] = "Compute 1 + 1. " + rows[row][key]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return copy


# ---------------------------------------------------------------------------- 1. resume mixing data


def test_resume_with_other_problem_text_stops_with_the_ids(model, data_dir, tmp_path):
    changed = _changed_data(data_dir, tmp_path)
    out = tmp_path / "runs"
    first = generate(plan_run(_config(model, changed, out, allow_unpinned=True)))
    assert first.state == "done"
    run_dir = only_run_dir(out)
    before = _folder_state(run_dir)
    plan = plan_run(_config(model, data_dir, out, k=4))  # the pinned rows: same run id, other question
    assert plan.path == run_dir
    with pytest.raises(RunError) as caught:
        generate(plan)
    message = str(caught.value)
    second_id = plan.problems[1].id
    assert f"{second_id} (question changed)" in message and "1 problem(s) differ" in message
    assert plan.problems[0].id not in message and plan.problems[2].id not in message
    assert _folder_state(run_dir) == before  # nothing written: samples, problems, manifest as they were


def test_resume_with_other_rendered_prompt_stops(model, data_dir, tmp_path):
    out = tmp_path / "runs"
    assert generate(plan_run(_config(model, data_dir, out))).state == "done"
    run_dir = only_run_dir(out)
    # Another tokenizer (-o tokenizer=..., a speed-only option, so the run id stays) renders other prompts.
    other = tmp_path / "tokenizer"
    other.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (model / name).exists():
            shutil.copy(model / name, other / name)
    config_path = other / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    if "chat_template" in config:
        config["chat_template"] = "SYSTEM: be brief.\n" + config["chat_template"]
        config_path.write_text(json.dumps(config))
    else:
        template = other / "chat_template.jinja"
        template.write_text("SYSTEM: be brief.\n" + template.read_text())
    before = _folder_state(run_dir)
    with pytest.raises(RunError, match=r"3 problem\(s\) differ.*rendered prompt changed"):
        generate(plan_run(_config(model, data_dir, out, k=3, engine_options={"tokenizer": str(other)})))
    assert _folder_state(run_dir) == before


def test_same_data_resumes_and_stores_prompt_hashes(model, data_dir, tmp_path):
    out = tmp_path / "runs"
    assert generate(plan_run(_config(model, data_dir, out))).state == "done"
    grown = generate(plan_run(_config(model, data_dir, out, k=3)))
    assert grown.state == "done" and grown.generated == 3
    manifest = json.loads((only_run_dir(out) / "manifest.json").read_text())
    assert len(manifest["prompt"]["hashes"]) == 3


def _subset_plan(model, data_dir, out, first: int, **changes):
    """A plan whose problems are chosen by the caller (as scripts/example_smollm2.py does)."""
    plan = plan_run(_config(model, data_dir, out, run_id="subset", limit=4, **changes))
    plan.problems = plan.problems[:first]
    return plan


def test_a_grown_subset_extends_only_when_asked(model, data_dir, tmp_path):
    """A fixed run id given more problems: refused by default, extended with ``extend_problems``;
    the stored problems must still match (the question check stays on)."""
    out = tmp_path / "runs"
    assert generate(_subset_plan(model, data_dir, out, 2)).state == "done"
    run_dir = only_run_dir(out)
    before = _folder_state(run_dir)
    with pytest.raises(RunError, match=r"1 problem\(s\) differ.*new problem"):
        generate(_subset_plan(model, data_dir, out, 3))
    assert _folder_state(run_dir) == before
    grown = generate(_subset_plan(model, data_dir, out, 3, extend_problems=True))
    assert grown.state == "done" and grown.generated == 2
    assert len((run_dir / "problems.jsonl").read_text().splitlines()) == 3
    changed = _changed_data(data_dir, tmp_path, row=0)
    with pytest.raises(RunError, match="question changed"):
        generate(_subset_plan(model, changed, out, 4, extend_problems=True, allow_unpinned=True))


# ---------------------------------------------------------------------------- 4. engine options


def test_bad_engine_options_fail_in_planning(model, data_dir, tmp_path):
    with pytest.raises(EngineError, match=r"unknown engine option\(s\) \['bogus'\]"):
        plan_run(_config(model, data_dir, tmp_path, engine="hf", engine_options={"bogus": 1}))
    with pytest.raises(EngineError, match="hf: engine option batch_size: expected an integer >= 1, got 'abc'"):
        plan_run(_config(model, data_dir, tmp_path, engine="hf", engine_options={"batch_size": "abc"}))
    with pytest.raises(EngineError, match="openai: engine option concurrency: expected an integer >= 1, got 0"):
        plan_run(_config(model, data_dir, tmp_path, engine="openai", engine_options={"concurrency": 0}))
    with pytest.raises(EngineError, match="vllm: engine option enforce_eager: expected true or false"):
        validate_options("vllm", {"enforce_eager": "yes"})
    with pytest.raises(EngineError, match="m1: engine option kernels: expected one of auto|torch|kernels"):
        validate_options("m1", {"kernels": "triton"})
    assert validate_options("openai", {"timeout": 5, "endpoints": "a,b"}) == {"timeout": 5, "endpoints": "a,b"}
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "option, message",
    [
        ("bogus=1", "unknown engine option(s) ['bogus']"),
        ("width=abc", "engine option width: expected an integer >= 1, got 'abc'"),
    ],
)
def test_cli_bad_option_touches_no_folder(model, data_dir, tmp_path, option, message):
    args = [
        "run",
        "--model",
        str(model),
        "--engine",
        ENGINE,
        "--task",
        "aime25",
        "--limit",
        "2",
        "--k",
        "1",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--no-grade",
    ]
    fresh = CliRunner().invoke(app, [*args, "-o", option], env={"COLUMNS": "300"})
    assert fresh.exit_code == 2 and message in fresh.output, fresh.output
    assert "Traceback" not in fresh.output and not any(tmp_path.iterdir())  # no folder left behind

    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    before = _folder_state(tmp_path)
    again = CliRunner().invoke(app, [*args, "-o", option], env={"COLUMNS": "300"})
    assert again.exit_code == 2 and message in again.output
    assert _folder_state(tmp_path) == before  # the finished run's manifest is untouched


# ---------------------------------------------------------------------------- 5. torn line in grade


def test_grade_says_what_it_cut_and_keeps_the_evidence(model, data_dir, tmp_path):
    assert generate(plan_run(_config(model, data_dir, tmp_path))).state == "done"
    run_dir = only_run_dir(tmp_path)
    rows = raw_sample_lines(run_dir)
    torn = b'{"problem_id": "2025-I-2", "sample_index": 7, "seed": 5, "text": "so the answer is \\\\box'
    with (run_dir / "samples.jsonl").open("ab") as handle:
        handle.write(torn)
    size_before = (run_dir / "samples.jsonl").stat().st_size
    result = CliRunner().invoke(app, ["grade", str(run_dir), "--workers", "1"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"cut a torn last line of samples.jsonl ({len(torn)} bytes at byte {size_before - len(torn)}" in said
    assert "problem '2025-I-2', sample 7" in said
    assert raw_sample_lines(run_dir) == rows
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (repair,) = manifest["repairs"]
    assert repair["file"] == "samples.jsonl" and repair["bytes"] == len(torn)
    assert repair["offset"] == size_before - len(torn)
    assert repair["problem_id"] == "2025-I-2" and repair["sample_index"] == 7
    assert repair["preview"] == torn.decode()
    assert manifest["stages"]["grade"]["truncated_tail"] is True
    # a later run keeps the evidence in its rewritten manifest
    assert generate(plan_run(_config(model, data_dir, tmp_path, k=3))).state == "done"
    assert json.loads((run_dir / "manifest.json").read_text())["repairs"] == [repair]


# ---------------------------------------------------------------------------- 9. huge k


def test_huge_k_is_refused_at_once(model, data_dir, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(RunError, match="k = 1,000,000,000 is above the limit of 100,000"):
        plan_run(_config(model, data_dir, tmp_path, k=1_000_000_000, limit=1))
    assert time.perf_counter() - t0 < 30  # before: 10 GB of request lists and no output
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--model",
            str(model),
            "--engine",
            ENGINE,
            "--task",
            "aime25",
            "--limit",
            "1",
            "--k",
            "1000000000",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path),
        ],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 2 and "above the limit" in result.output
    assert not any(tmp_path.iterdir())


def test_planning_is_lazy_and_splits_a_problem_into_chunks(data_dir, tmp_path):
    from m1eval.tasks.loader import load_task

    problems = load_task("aime25", data_dir)[:2]
    prompts = {p.id: (p.question, [1, 2]) for p in problems}
    requests = iter_pending(problems, prompts, {(problems[0].id, 1)}, MAX_K, 0, max_samples=512)
    first = next(requests)
    assert first.problem_id == problems[0].id and len(first.sample_indices) == 512
    assert first.sample_indices[:2] == [0, 2]
    assert sum(len(r.sample_indices) for r in requests) == 2 * MAX_K - 1 - 512


def test_smaller_k_after_an_unfinished_larger_k_leaves_no_large_n(model, data_dir, tmp_path):
    InstantEngine.interrupt_after = 1
    interrupted = generate(plan_run(_config(model, data_dir, tmp_path, k=8, chunk_size=4)))
    assert interrupted.state == "interrupted" and interrupted.stored == 4
    InstantEngine.interrupt_after = None
    done = generate(plan_run(_config(model, data_dir, tmp_path, k=2)))
    assert done.state == "done"
    manifest = json.loads((only_run_dir(tmp_path) / "manifest.json").read_text())
    assert manifest["sampling"]["n"] == 2
    # a finished larger k is kept when a smaller one runs later
    assert generate(plan_run(_config(model, data_dir, tmp_path, k=8))).state == "done"
    assert generate(plan_run(_config(model, data_dir, tmp_path, k=4))).state == "done"
    assert json.loads((only_run_dir(tmp_path) / "manifest.json").read_text())["sampling"]["n"] == 8


def test_an_interrupt_inside_a_batch_write_still_counts_what_reached_the_file(model, data_dir, tmp_path, monkeypatch):
    """Ctrl-C between a batch's samples and its timing line (the CI failure of stop 29: '0/4 kept'
    with 3 lines on disk): the outcome and the manifest count what samples.jsonl holds."""
    from m1eval.rundir.store import RunStore

    original = RunStore.append_samples

    def samples_then_interrupt(self, completions, timing=None):
        original(self, completions, None)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "append_samples", samples_then_interrupt)
    outcome = generate(plan_run(_config(model, data_dir, tmp_path, k=2, chunk_size=4)))
    on_disk = raw_sample_lines(only_run_dir(tmp_path))
    assert outcome.state == "interrupted"
    assert len(on_disk) == 4 and outcome.stored == 4, (len(on_disk), outcome.stored)
    assert "4/6 samples are kept" in outcome.message
    manifest = json.loads((only_run_dir(tmp_path) / "manifest.json").read_text())
    assert manifest["stages"]["generate"] == {**manifest["stages"]["generate"], "state": "interrupted", "samples": 4}


class Recorder(SilentObserver):
    """Keeps what the runner reports, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def planned(self, path, stored, expected) -> None:
        self.events.append(("planned", stored, expected))

    def started(self, expected, stored) -> None:
        self.events.append(("started", expected, stored))

    def stored(self, generated, tokens) -> None:
        self.events.append(("stored", generated, tokens))

    def finished(self) -> None:
        self.events.append(("finished",))


def test_runner_reports_to_its_observer_and_prints_nothing(model, data_dir, tmp_path, capfd):
    """The library takes callbacks; drawing is the CLI's (m1eval.cli.progress.RunProgress)."""
    recorder = Recorder()
    outcome = generate(plan_run(_config(model, data_dir, tmp_path, k=2, chunk_size=2)), observer=recorder)
    assert outcome.state == "done" and outcome.generated == 6
    assert recorder.events == [
        ("planned", 0, 6),
        ("started", 6, 0),
        ("stored", 2, 6),
        ("stored", 4, 12),
        ("stored", 6, 18),
        ("finished",),
    ]
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    again = Recorder()
    assert generate(plan_run(_config(model, data_dir, tmp_path, k=2)), observer=again).generated == 0
    assert again.events == []  # nothing to generate: nothing to show
