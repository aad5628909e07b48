"""Task loading: every shared benchmark loads, pins verify, normalisers follow the published quirks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from m1eval.tasks import loader as task_lib
from m1eval.tasks.loader import PinMismatchError, TaskError, content_hash, load_task

EXPECTED_ROWS = {"math500": 500, "aime25": 30, "olympiadbench": 675, "aime24": 30, "amc23": 40}


@pytest.mark.parametrize("name", sorted(EXPECTED_ROWS))
def test_every_shared_file_loads_and_verifies(name: str, data_dir: Path) -> None:
    problems = load_task(name, data_dir)
    assert len(problems) == EXPECTED_ROWS[name]
    assert len({p.id for p in problems}) == len(problems)
    assert all(p.task == name and p.question and p.answers for p in problems)
    spec = task_lib.load_spec(name)
    assert task_lib.verify_pin(spec, problems) == (True, spec.content_hash)


def test_environment_variable_selects_local_data(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(task_lib.DATA_DIR_ENV, str(data_dir))
    assert len(load_task("aime25")) == 30


def test_aime25_known_answers_and_ids(data_dir: Path) -> None:
    by_id = {p.id: p for p in load_task("aime25", data_dir)}
    assert by_id["2025-I-1"].answers == ["70"]
    assert by_id["2025-II-1"].answers == ["468"]
    assert by_id["2025-I-1"].answer_format == "integer"
    # Figure source embedded in the statement is kept as published.
    assert "tikzpicture" in by_id["2025-I-2"].question


def test_aime24_leading_zeros_and_published_order(data_dir: Path) -> None:
    problems = load_task("aime24", data_dir)
    by_source = {p.meta["source_id"]: p for p in problems}
    assert by_source[67].answers == ["25"]  # published as "025"
    assert by_source[85].answers == ["80"]  # published as "080"
    assert all(not a.startswith("0") or a == "0" for p in problems for a in p.answers)
    # Lexicographic URL order within each contest is kept: I-1, I-10, I-11, ...
    assert [p.id for p in problems[:3]] == ["2024-I-1", "2024-I-10", "2024-I-11"]


def test_amc23_float_answers_become_integers(data_dir: Path) -> None:
    problems = load_task("amc23", data_dir)
    assert problems[0].id == "2023-12A-1" and problems[0].answers == ["27"]
    assert all("." not in a for p in problems for a in p.answers if a.replace("-", "").replace(".", "").isdigit())
    assert task_lib._number_answer(-1.0) == "-1" and task_lib._number_answer(0.5) == "0.5"


def test_olympiadbench_multi_answer_unit_and_tolerance(data_dir: Path) -> None:
    by_id = {p.id: p for p in load_task("olympiadbench", data_dir)}
    multi = by_id["1664"]
    assert multi.meta["is_multiple_answer"] is True and multi.answers == ["$69$,$84$"]
    unit = by_id["2253"]
    assert unit.meta["unit"] == "minute" and unit.answers == ["45"]
    tolerant = by_id["2592"]
    assert tolerant.meta["tolerance"] == pytest.approx(0.1)
    assert by_id["1618"].answer_format == "tuple"
    assert sum(p.meta["is_multiple_answer"] for p in by_id.values()) == 94


def test_math500_ids_are_unique_ids(data_dir: Path) -> None:
    problems = load_task("math500", data_dir)
    assert problems[0].id == "test/precalculus/807.json"
    assert "solution" in problems[0].meta and problems[0].meta["level"] in range(1, 6)


def _copy_task(data_dir: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "data"
    (folder / name).mkdir(parents=True)
    shutil.copy(data_dir / name / "test.jsonl", folder / name / "test.jsonl")
    return folder


def test_changed_row_fails_hash_check_with_both_values(data_dir: Path, tmp_path: Path) -> None:
    folder = _copy_task(data_dir, tmp_path, "aime25")
    path = folder / "aime25" / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[4])
    row["answer"] = 1 + int(row["answer"])
    lines[4] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = task_lib.load_spec("aime25")
    with pytest.raises(PinMismatchError) as info:
        load_task("aime25", folder)
    message = str(info.value)
    assert spec.content_hash in message
    assert content_hash(task_lib.load_local(spec, folder)) in message
    # The user can opt out explicitly.
    assert len(load_task("aime25", folder, allow_unpinned=True)) == 30


def test_missing_row_fails_count_check(data_dir: Path, tmp_path: Path) -> None:
    folder = _copy_task(data_dir, tmp_path, "amc23")
    path = folder / "amc23" / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(PinMismatchError, match="expected 40, got 39"):
        load_task("amc23", folder)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"id": "2025-I-99", "problem": "x"}', "missing field 'answer'"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_row_names_file_and_line(data_dir: Path, tmp_path: Path, bad_line: str, message: str) -> None:
    folder = _copy_task(data_dir, tmp_path, "aime25")
    path = folder / "aime25" / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(6, bad_line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TaskError) as info:
        load_task("aime25", folder)
    assert f"{path}:7" in str(info.value)
    assert message in str(info.value)


def test_non_integer_aime_answer_is_an_error(data_dir: Path, tmp_path: Path) -> None:
    folder = _copy_task(data_dir, tmp_path, "aime25")
    path = folder / "aime25" / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["answer"] = "seventy"
    lines[0] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"test.jsonl:1: answer 'seventy' is not an integer"):
        load_task("aime25", folder)


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(TaskError, match="unknown task 'aime26'.*aime25"):
        load_task("aime26")


def test_hub_code_path_through_datasets_on_a_local_dataset(data_dir: Path, tmp_path: Path) -> None:
    """The hub loader runs through `datasets.load_dataset`; a local dataset folder stands in for the hub."""
    import datasets

    spec = task_lib.load_spec("aime25")
    rows = [json.loads(line) for line in (data_dir / "aime25" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    # The hub copy has no "id" column: ids are derived from problem_idx.
    hub_rows = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    dataset = datasets.Dataset.from_list(hub_rows)
    folder = tmp_path / "hub_aime25"
    dataset.to_parquet(str(folder / "data" / "train-00000.parquet"))
    hub = task_lib.HubSource(id=str(folder), config=None, split="train", revision=None)
    problems = task_lib.load_hub(spec, hub)
    assert len(problems) == 30
    assert problems[0].id == "2025-I-1" and problems[15].id == "2025-II-1"
    assert task_lib.verify_pin(spec, problems)[0]


def test_hub_filter_keeps_only_matching_urls(data_dir: Path, tmp_path: Path) -> None:
    import datasets

    spec = task_lib.load_spec("amc23")
    rows = [json.loads(line) for line in (data_dir / "amc23" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    extra = dict(rows[0], url=rows[0]["url"].replace("2023_AMC", "2022_AMC"), id=999)
    folder = tmp_path / "hub_amc"
    datasets.Dataset.from_list([extra, *rows]).to_parquet(str(folder / "data" / "train-00000.parquet"))
    problems = task_lib.load_hub(spec, task_lib.HubSource(id=str(folder), split="train", url_contains="2023_AMC"))
    assert len(problems) == 40 and task_lib.verify_pin(spec, problems)[0]


def test_unreachable_hub_gives_clear_error(tmp_path: Path) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE at import, so the check runs in a fresh interpreter.
    import os
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    env.pop(task_lib.DATA_DIR_ENV, None)
    script = "from m1eval.tasks.loader import load_task\nload_task('aime25')"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert (
        "task 'aime25'" in result.stderr and "dataset 'MathArena/aime_2025' is not in the local cache" in result.stderr
    )
    assert "data_dir" in result.stderr
