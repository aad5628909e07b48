"""The recipes of docs/extending.md, executed: a benchmark from one TOML, an engine from one class
and one registry line, a metric from one ``register_metric`` call (that one lives in
``test_metrics.py``). If a recipe stops working as written, these fail.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from helpers.run_helpers import only_run_dir, tiny_model
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.engines import ENGINES
from m1eval.engines.base import (
    BatchClock,
    BatchResult,
    EngineBase,
    GenerationRequest,
    batch_result,
)
from m1eval.engines.options import OptionSpec, checked_options
from m1eval.records import Completion, SamplingConfig
from m1eval.tasks import loader as task_lib

ROWS = [{"id": f"toy-{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(1, 5)]


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture
def toy_benchmark(tmp_path, monkeypatch) -> Path:
    """Recipe 1: data in <data>/<name>/test.jsonl, one spec in the specs folder, pinned by its hash."""
    data = tmp_path / "data"
    (data / "toy").mkdir(parents=True)
    (data / "toy" / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    specs = tmp_path / "task_specs"
    shutil.copytree(task_lib.tasks_dir(), specs)
    monkeypatch.setenv(task_lib.TASKS_DIR_ENV, str(specs))
    spec = specs / "toy.toml"
    text = (
        'name = "toy"\ndescription = "doubling"\nanswer_format = "integer"\nexpected_rows = 4\n'
        'content_hash = "{hash}"\nnormalizer = "aime25"\n\n'
        '[hub]\nid = "example/toy"\nsplit = "test"\nrevision = "0123abc"\n\n'
        '[fields]\nid = "id"\nquestion = "problem"\nanswers = "answer"\nmeta = []\n'
    )
    spec.write_text(text.format(hash=""))
    problems = task_lib.load_task("toy", data, allow_unpinned=True)  # step 4: the hash to pin
    spec.write_text(text.format(hash=task_lib.content_hash(problems)))
    return data


def test_a_benchmark_is_one_spec_file(toy_benchmark: Path) -> None:
    problems = task_lib.load_task("toy", toy_benchmark)
    assert [p.answers for p in problems] == [["2"], ["4"], ["6"], ["8"]]
    assert "toy" in task_lib.list_tasks()
    assert "What is 3 + 3?" in _invoke("tasks", "show", "toy", "-n", "3", "--data-dir", str(toy_benchmark))
    # The pin holds: a changed row is refused.
    path = toy_benchmark / "toy" / "test.jsonl"
    path.write_text(path.read_text().replace("What is 1 + 1?", "What is 1 + 2?"))
    with pytest.raises(task_lib.PinMismatchError):
        task_lib.load_task("toy", toy_benchmark)


class AdderEngine(EngineBase):
    """Recipe 2: an engine that 'solves' the toy questions by reading the two numbers, with one
    declared option. It keeps the contract: one Completion per requested (problem, sample)
    with that sample's seed, batches timed by ``BatchClock`` and built by ``batch_result``."""

    name = "adder"
    option_specs = {"wrong_rate": OptionSpec("float", 0.0, changes_samples=True, help="share of wrong answers")}  # noqa: RUF012

    def __init__(self, model: str, *, options: dict | None = None) -> None:
        self.options = checked_options(self.name, options, self.option_specs)
        self.wrong_rate = float(self.options.get("wrong_rate", 0.0))

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        for request in requests:
            clock = BatchClock()
            words = request.prompt.split("What is ", 1)[1].split("?", 1)[0].split(" + ")
            right = int(words[0]) + int(words[1])
            completions = []
            for index, seed in zip(request.sample_indices, request.seeds):
                answer = right + 1 if random.Random(seed).random() < self.wrong_rate else right
                completions.append(
                    Completion(
                        request.problem_id,
                        index,
                        seed,
                        f"so \\boxed{{{answer}}}",
                        len(request.prompt_token_ids or []),
                        4,
                        "stop",
                        "",
                    )
                )
            self.report_progress(len(completions), 4 * len(completions))
            yield batch_result(self.name, completions, clock)


@pytest.fixture
def adder_registered(monkeypatch) -> None:
    monkeypatch.setitem(ENGINES, "adder", f"{__name__}:AdderEngine")  # step 3: one registry line


def test_an_engine_is_one_class_and_one_registry_line(toy_benchmark, adder_registered, tmp_path_factory, tmp_path):
    model = tiny_model(tmp_path_factory)  # its tokenizer renders the prompts
    out = tmp_path / "results"
    common = [
        "run",
        "-m",
        str(model),
        "-e",
        "adder",
        "-t",
        "toy",
        "--data-dir",
        str(toy_benchmark),
        "--out",
        str(out),
        "--max-tokens",
        "8",
    ]
    assert "adder" in _invoke("engines")
    _invoke(*common, "-k", "2", "-o", "wrong_rate=0.5", "--no-grade")
    run_dir = only_run_dir(out)
    _invoke(*common, "-k", "6", "-o", "wrong_rate=0.5")  # resumes the same run: 4 more samples per problem
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert sorted((s["problem_id"], s["sample_index"]) for s in samples) == sorted(
        (f"toy-{i}", j) for i in range(1, 5) for j in range(6)
    )
    report = json.loads(_invoke("report", str(run_dir), "-f", "json", "-B", "0"))
    run = report["runs"][0]
    assert (run["n"], run["n_problems"], run["samples"]) == (6, 4, 24)
    assert 0.2 < run["pass1"] < 0.8  # about half the samples were made wrong on purpose
    bad = CliRunner().invoke(app, [*common, "-k", "2", "-o", "wrong_rate=abc"], env={"COLUMNS": "200"})
    assert bad.exit_code == 2 and "wrong_rate" in bad.output
