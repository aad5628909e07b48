"""The paper's evaluation protocol per task: presets, prompts, run ids, manifest, `m1eval models`.

The published M1 evaluation samples at T 0.7, top_p 1.0 without top-k, allows 24,576 new
tokens on AIME24/25 and 32,768 on MATH500/OlympiadBench, joins question and instruction
with one space (AIME25: a blank line after the stripped question) and stops at the
tokenizer's one EOS id.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines import engine_class
from m1eval.engines.base import EngineError
from m1eval.engines.m1 import _eos_ids
from m1eval.models.presets import M1_SUFFIX, PRESETS, TaskProtocol, resolve_model
from m1eval.models.prompts import JOINS, PromptError, load_tokenizer, render, user_message
from m1eval.models.tiny_hybrid import build_tiny_hybrid
from m1eval.pipeline.runner import RunConfig, RunError, generate, plan_run

PAPER = {  # task: (max new tokens, join)
    "aime24": (24576, "space"),
    "aime25": (24576, "blank_line"),
    "math500": (32768, "space"),
    "olympiadbench": (32768, "space"),
    "amc23": (32768, "space"),
}


def test_m1_preset_carries_the_published_protocol_per_task():
    m1 = PRESETS["m1"]
    assert (m1.temperature, m1.top_p, m1.engine_options["eos"]) == (0.7, 1.0, "tokenizer")
    for task, (budget, join) in PAPER.items():
        protocol = resolve_model("m1").protocol(task)
        assert (protocol.max_tokens, protocol.join) == (budget, join), task
        assert "M1" in protocol.source
    # other presets keep m1eval's newline and the R1 paper's 32768 for every task
    r1 = resolve_model("r1-qwen-1.5b").protocol("aime25")
    assert (r1.max_tokens, r1.join) == (32768, "newline")
    with pytest.raises(ValueError, match="unknown join 'tab'"):
        TaskProtocol(100, "tab")


def test_joins_are_exactly_the_published_strings():
    question = "  Find $x$ if $x+1=2$.\n"
    assert user_message(question, M1_SUFFIX, "space") == f"{question} {M1_SUFFIX}"  # the question as stored
    assert user_message(question, M1_SUFFIX, "blank_line") == question.strip() + "\n\n" + M1_SUFFIX
    assert user_message(question, M1_SUFFIX, "newline") == question.strip() + "\n" + M1_SUFFIX
    assert user_message(question, "", "space") == question.strip()
    for join, fmt in JOINS.items():  # the format string recorded in the manifest says the same
        q = "Q?"
        assert user_message(q, "I.", join) == fmt.replace("{question.strip()}", q).replace(
            "{question}", q).replace("{instruction}", "I.")  # fmt: skip
    with pytest.raises(PromptError, match="unknown join 'tab'"):
        user_message("Q", "I", "tab")


def _config(data_dir, tmp_path, **changes) -> RunConfig:
    base = {"model": "m1", "task": "aime25", "k": 2, "limit": 2, "data_dir": data_dir, "out": tmp_path}
    return RunConfig(**{**base, **changes})


@pytest.mark.parametrize("task", sorted(PAPER))
def test_plan_takes_budget_and_join_from_the_task_protocol(data_dir, tmp_path, task):
    plan = plan_run(_config(data_dir, tmp_path, task=task))
    budget, join = PAPER[task]
    assert (plan.sampling.max_tokens, plan.join, plan.sampling.top_k) == (budget, join, -1)
    assert (plan.sampling.temperature, plan.sampling.top_p) == (0.7, 1.0)
    assert plan.engine_options["eos"] == "tokenizer"
    assert plan_run(_config(data_dir, tmp_path, task=task, max_tokens=100)).sampling.max_tokens == 100


def test_a_changed_protocol_gets_another_run_id(data_dir, tmp_path):
    paper = plan_run(_config(data_dir, tmp_path))
    assert plan_run(_config(data_dir, tmp_path, join="blank_line")).path == paper.path  # the same protocol
    assert plan_run(_config(data_dir, tmp_path, join="space")).path != paper.path
    assert plan_run(_config(data_dir, tmp_path, max_tokens=32768)).path != paper.path
    assert plan_run(_config(data_dir, tmp_path, engine_options={"eos": "all"})).path != paper.path
    # a preset whose join never changed keeps the run ids it had before joins existed
    r1 = plan_run(_config(data_dir, tmp_path, model="r1-qwen-1.5b", max_tokens=32))
    assert "join" not in json.dumps(dataclasses.asdict(r1.sampling))
    assert plan_run(_config(data_dir, tmp_path, model="r1-qwen-1.5b", max_tokens=32, join="space")).path != r1.path
    with pytest.raises(RunError, match="join must be one of newline, space, blank_line"):
        plan_run(_config(data_dir, tmp_path, join="tab"))


def test_manifest_records_the_prompt_protocol_and_engine_sees_it(data_dir, tmp_path):
    """The m1 preset's protocol through the real native engine on a tiny checkpoint."""
    folder = build_tiny_hybrid(tmp_path / "tiny-m1", d_model=64)
    plan = plan_run(_config(data_dir, tmp_path / "out", max_tokens=4))
    plan = dataclasses.replace(plan, model=dataclasses.replace(plan.model, path=str(folder)))
    outcome = generate(plan)
    assert outcome.state == "done", outcome.message
    manifest = json.loads((plan.path / "manifest.json").read_text())
    hashes = manifest["prompt"].pop("hashes")  # one rendered-prompt hash per problem (resume check)
    assert sorted(hashes) == sorted(p.id for p in plan.problems)
    assert manifest["prompt"] == {
        "suffix": M1_SUFFIX, "join": "blank_line", "user_message": "{question.strip()}\n\n{instruction}",
        "chat_template": True, "template_hash": manifest["prompt"]["template_hash"], "max_tokens": 4,
        "eos": "tokenizer", "source": "M1 eval.sh + data script",
    }  # fmt: skip
    assert manifest["identity"]["join"] == "blank_line"
    tokenizer = load_tokenizer(str(folder))
    rows = [json.loads(line) for line in (plan.path / "samples.jsonl").read_text().splitlines()]
    for problem in plan.problems:
        expected = len(render(tokenizer, problem.question, M1_SUFFIX, "blank_line")[1])
        newline = len(render(tokenizer, problem.question, M1_SUFFIX, "newline")[1])
        assert expected != newline  # else this check could not tell the joins apart
        assert {r["prompt_tokens"] for r in rows if r["problem_id"] == problem.id} == {expected}


def test_m1_engine_stops_at_one_eos_id_when_asked(tmp_path):
    assert _eos_ids("tokenizer", [7, 8, 9], 9) == [9]
    assert _eos_ids("all", [7, 8], 9) == [7, 8, 9]
    with pytest.raises(EngineError, match="eos must be 'all' or 'tokenizer'"):
        _eos_ids("first", [7], 9)
    folder = build_tiny_hybrid(tmp_path / "tiny-m1", d_model=64)
    config = json.loads((folder / "config.json").read_text())
    config["eos_token_id"] = [config["eos_token_id"], 5]  # Llama-3.2 lists several ids
    (folder / "config.json").write_text(json.dumps(config))
    one = engine_class("m1")(str(folder), options={"eos": "tokenizer"})
    every = engine_class("m1")(str(folder), options={})
    assert one.eos_token_ids == [one.tokenizer.eos_token_id]
    assert every.eos_token_ids == sorted({one.tokenizer.eos_token_id, 5})


def test_models_verb_shows_the_per_task_protocol():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for task, (budget, join) in PAPER.items():
        row = next(line for line in lines if line.split("│")[1:3] and line.split("│")[1].strip() == "m1"
                   and line.split("│")[2].strip() == task)  # fmt: skip
        assert str(budget) in row and f" {join} " in row
    assert any("blank_line" in line and "{question.strip()}\\n\\n{instruction}" in line for line in lines)
