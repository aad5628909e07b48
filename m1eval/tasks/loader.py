"""Benchmark loading: one TOML spec per task, pinned by row count and content hash.

A task is only comparable across papers if everyone grades the same rows, so loading
always checks the rows against the pin in ``m1eval/tasks/<name>.toml`` and refuses a
mismatch unless the user explicitly opts out with ``allow_unpinned``. Data come either from a
local folder laid out like ``<data_dir>/<task>/test.jsonl`` or from the Hugging Face hub
through ``datasets``; both paths go through the same per-benchmark normaliser.

The specs live inside the package (package data), so an installed m1eval finds them
wherever it is installed; a missing or empty spec folder is an error, never an empty list.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m1eval import hub as hub_lib
from m1eval.records import ANSWER_FORMATS, Problem

DATA_DIR_ENV = "M1EVAL_DATA_DIR"
TASKS_DIR_ENV = "M1EVAL_TASKS_DIR"
LOCAL_FILE = "test.jsonl"


class TaskError(Exception):
    """A task cannot be loaded: unknown name, bad spec, bad row, or a pin mismatch."""


class PinMismatchError(TaskError):
    """The loaded rows differ from the pinned count or content hash."""


@dataclass(frozen=True)
class HubSource:
    id: str
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    url_contains: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """What ``m1eval/tasks/<name>.toml`` says about a benchmark."""

    name: str
    description: str
    answer_format: str
    expected_rows: int
    content_hash: str
    normalizer: str
    hub: HubSource
    fields: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class LoadedTask:
    """The rows of a task as read, and what a run must record about where they came from."""

    spec: TaskSpec
    problems: list[Problem]
    content_hash: str  # of the rows actually read (equals spec.content_hash when pinned)
    pinned: bool  # row count and hash match the spec
    source: str  # the file read, or "hub:<id>" (config, split, revision)
    data_dir: Path | None  # the local folder read (--data-dir or $M1EVAL_DATA_DIR), None for the hub


def tasks_dir() -> Path:
    """The folder of task specs: ``$M1EVAL_TASKS_DIR`` or this package (a benchmark is one TOML file beside the loader)."""
    env = os.environ.get(TASKS_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent


def list_tasks() -> list[str]:
    """Names of the task specs; an empty or missing spec folder is an error (a broken install)."""
    folder = tasks_dir()
    names = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    if not names:
        where = f"${TASKS_DIR_ENV}={folder}" if os.environ.get(TASKS_DIR_ENV) else str(folder)
        raise TaskError(
            f"no task specs (*.toml) found in {where}: the m1eval installation is missing its package data "
            f"(reinstall m1eval) or ${TASKS_DIR_ENV} points to the wrong folder"
        )
    return names


def load_spec(name: str) -> TaskSpec:
    path = tasks_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_tasks()) or "none"
        raise TaskError(f"unknown task {name!r} (known: {known}; specs are read from {tasks_dir()})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskError(f"{path}: invalid TOML: {exc}") from exc
    try:
        spec = TaskSpec(
            name=raw["name"],
            description=raw.get("description", ""),
            answer_format=raw["answer_format"],
            expected_rows=int(raw["expected_rows"]),
            content_hash=raw["content_hash"],
            normalizer=raw.get("normalizer", raw["name"]),
            hub=HubSource(**raw["hub"]),
            fields=dict(raw["fields"]),
            path=path,
        )
    except (KeyError, TypeError) as exc:
        raise TaskError(f"{path}: missing or bad key: {exc}") from exc
    if spec.answer_format not in ANSWER_FORMATS:
        raise TaskError(f"{path}: answer_format {spec.answer_format!r} not in {ANSWER_FORMATS}")
    if spec.normalizer not in NORMALIZERS:
        raise TaskError(f"{path}: unknown normalizer {spec.normalizer!r}")
    return spec


# --------------------------------------------------------------------------- hashing


def canonical_sha256(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, no spaces, UTF-8): pins and problem hashes."""
    blob = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def content_hash(problems: Iterable[Problem]) -> str:
    """sha256 over the canonical JSON of (id, question, answers) of every row, in order."""
    return canonical_sha256([{"id": p.id, "question": p.question, "answers": list(p.answers)} for p in problems])


# --------------------------------------------------------------------------- normalisers


def _integer_answer(value: Any) -> str:
    """AIME answers are integers 0-999; "025" and 25.0 both become "25"."""
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return str(int(text))
    if re.fullmatch(r"[+-]?\d+\.0*", text):
        return str(int(float(text)))
    raise ValueError(f"answer {value!r} is not an integer")


def _number_answer(value: Any) -> str:
    """AMC23 stores answers as JSON floats: 27.0 -> "27", 0.5 stays "0.5"."""
    if isinstance(value, bool):
        raise ValueError(f"answer {value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


_AOPS_URL = re.compile(r"(\d{4})_(AIME|AMC)_(\w+?)_Problems/Problem_(\d+)")


def _id_from_aops_url(url: str) -> str:
    """'.../2024_AIME_I_Problems/Problem_10' -> '2024-I-10'; AMC '2023_AMC_12A' -> '2023-12A-3'."""
    match = _AOPS_URL.search(url)
    if not match:
        raise ValueError(f"cannot derive a problem id from url {url!r}")
    year, _contest, part, number = match.groups()
    return f"{year}-{part}-{int(number)}"


def _meta(row: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    return {key: row[key] for key in spec.fields.get("meta", []) if key in row}


def _field(row: dict[str, Any], spec: TaskSpec, name: str) -> Any:
    column = spec.fields[name]
    if column not in row:
        raise KeyError(column)
    return row[column]


def _norm_math500(row: dict[str, Any], spec: TaskSpec) -> Problem:
    return Problem(
        task=spec.name,
        id=str(_field(row, spec, "id")),
        question=str(_field(row, spec, "question")),
        answers=[str(_field(row, spec, "answers")).strip()],
        answer_format=spec.answer_format,
        meta=_meta(row, spec),
    )


def _norm_aime25(row: dict[str, Any], spec: TaskSpec) -> Problem:
    if spec.fields["id"] in row:
        pid = str(row[spec.fields["id"]])
    else:  # the hub copy has only a running index over both contests
        idx = int(row["problem_idx"])
        pid = f"2025-{'I' if idx <= 15 else 'II'}-{idx if idx <= 15 else idx - 15}"
    return Problem(
        task=spec.name,
        id=pid,
        question=str(_field(row, spec, "question")),
        answers=[_integer_answer(_field(row, spec, "answers"))],
        answer_format=spec.answer_format,
        meta=_meta(row, spec),
    )


def _norm_aops(answer: Callable[[Any], str]) -> Callable[[dict[str, Any], TaskSpec], Problem]:
    def normalise(row: dict[str, Any], spec: TaskSpec) -> Problem:
        meta = _meta(row, spec)
        if "id" in row:
            meta["source_id"] = row["id"]
        return Problem(
            task=spec.name,
            id=_id_from_aops_url(str(_field(row, spec, "id"))),
            question=str(_field(row, spec, "question")),
            answers=[answer(_field(row, spec, "answers"))],
            answer_format=spec.answer_format,
            meta=meta,
        )

    return normalise


_OLYMPIAD_FORMATS = {"Numerical": "number", "Expression": "expression", "Tuple": "tuple", "Interval": "interval"}


def _norm_olympiadbench(row: dict[str, Any], spec: TaskSpec) -> Problem:
    finals = _field(row, spec, "answers")
    if isinstance(finals, str):
        finals = [finals]
    if not isinstance(finals, list) or not finals:
        raise ValueError(f"final_answer must be a non-empty list, got {finals!r}")
    meta = _meta(row, spec)
    error = meta.get("error")
    meta["tolerance"] = float(error) if error not in (None, "") else None
    return Problem(
        task=spec.name,
        id=str(_field(row, spec, "id")),
        question=str(_field(row, spec, "question")),
        answers=[str(a).strip() for a in finals],
        answer_format=_OLYMPIAD_FORMATS.get(str(row.get("answer_type")), spec.answer_format),
        meta=meta,
    )


NORMALIZERS: dict[str, Callable[[dict[str, Any], TaskSpec], Problem]] = {
    "math500": _norm_math500,
    "aime25": _norm_aime25,
    "aime24": _norm_aops(_integer_answer),
    "amc23": _norm_aops(_number_answer),
    "olympiadbench": _norm_olympiadbench,
}


# --------------------------------------------------------------------------- sources


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise TaskError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def _normalise_rows(spec: TaskSpec, rows: list[tuple[str, dict[str, Any]]]) -> list[Problem]:
    """Normalise rows; ``where`` of each row ("file:line") goes into every error message."""
    normalise = NORMALIZERS[spec.normalizer]
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        try:
            problem = normalise(row, spec)
        except KeyError as exc:
            raise TaskError(f"{where}: missing field {exc.args[0]!r}") from exc
        except (ValueError, TypeError) as exc:
            raise TaskError(f"{where}: {exc}") from exc
        if problem.id in seen:
            raise TaskError(f"{where}: duplicate problem id {problem.id!r} (first at {seen[problem.id]})")
        seen[problem.id] = where
        problems.append(problem)
    return problems


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def load_local(spec: TaskSpec, data_dir: Path) -> list[Problem]:
    path = data_dir / spec.name / LOCAL_FILE
    if not path.is_file():
        raise TaskError(f"task {spec.name!r}: no local file {path} (expected <data-dir>/<task>/{LOCAL_FILE})")
    rows = [(f"{path}:{lineno}", row) for lineno, row in _read_jsonl(path)]
    return _normalise_rows(spec, rows)


def load_hub(spec: TaskSpec, hub: HubSource | None = None) -> list[Problem]:
    """Load through ``datasets``; ``hub.id`` may also be a local dataset folder.

    Before the first hub access the hub is probed once (``m1eval.hub``): an unreachable
    hub fails here in seconds with what to do, instead of after minutes of retries.
    """
    hub = hub or spec.hub
    offline = None if hub_lib.is_local(hub.id) else hub_lib.offline_reason()
    import datasets  # heavy import, only on this path

    try:
        dataset = datasets.load_dataset(hub.id, hub.config, split=hub.split, revision=hub.revision)
    except Exception as exc:  # datasets raises many types; the message is what matters
        if offline:
            raise TaskError(
                f"task {spec.name!r}: {offline}, and dataset {hub.id!r} is not in the local cache; {hub_lib.DATA_HINT}"
            ) from exc
        raise TaskError(
            f"task {spec.name!r}: cannot load hub dataset {hub.id!r} ({hub.config}, {hub.split}): {exc}; "
            f"without hub access give a data_dir or set {DATA_DIR_ENV} to a folder laid out as <task>/{LOCAL_FILE}"
        ) from exc
    rows = []
    for index, row in enumerate(dataset):
        if hub.url_contains and hub.url_contains not in str(row.get("url", "")):
            continue
        rows.append((f"{hub.id}[{hub.split}] row {index}", dict(row)))
    return _normalise_rows(spec, rows)


def verify_pin(spec: TaskSpec, problems: list[Problem]) -> tuple[bool, str]:
    """Return (matches, actual_hash); never raises."""
    actual = content_hash(problems)
    return (len(problems) == spec.expected_rows and actual == spec.content_hash), actual


def load_task(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_unpinned: bool = False,
) -> list[Problem]:
    """Load a benchmark as ``Problem`` records, verified against its pin.

    ``data_dir`` (or ``$M1EVAL_DATA_DIR``) selects the local folder; without either the
    hub is used.
    """
    return read_task(name, data_dir, allow_unpinned=allow_unpinned).problems


def read_task(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_unpinned: bool = False,
) -> LoadedTask:
    """``load_task`` plus the provenance a run records: actual hash, pinned or not, the source read."""
    spec = load_spec(name)
    folder = resolve_data_dir(data_dir)
    problems = load_local(spec, folder) if folder is not None else load_hub(spec)
    ok, actual = verify_pin(spec, problems)
    if not ok and not allow_unpinned:
        raise PinMismatchError(
            f"task {name!r} does not match its pin in {spec.path}:\n"
            f"  rows:    expected {spec.expected_rows}, got {len(problems)}\n"
            f"  sha256:  expected {spec.content_hash}\n"
            f"           got      {actual}\n"
            "allow_unpinned uses these rows anyway (results will not be comparable)"
        )
    if folder is not None:
        source = str((folder / spec.name / LOCAL_FILE).resolve())
    else:
        source = f"hub:{spec.hub.id} ({spec.hub.config}, {spec.hub.split}, revision {spec.hub.revision})"
    return LoadedTask(spec, problems, actual, ok, source, folder)


def select_subset(problems: list[Problem], limit: int | None) -> list[Problem]:
    """A deterministic subset: the first ``limit`` problems in published order."""
    return problems if limit is None else problems[:limit]
