"""One run folder loaded as tables: the input of every analysis stage (report, budget, plots).

Analyses work on pandas frames rather than record lists because every statistic is a
group-by over (problem, sample). ``load_run`` reads a folder through ``RunStore`` (so it
inherits its crash tolerance) and joins samples with grades once, here, so no analysis
re-implements the join or disagrees about which samples count.

Incomplete problems. A run interrupted mid-generation, or one grown from n=64 to
n=128, can hold different sample counts per problem. ``RunData.n`` is the *minimum*
count over the problems that have at least one graded sample: every problem can then
supply k <= n samples, so curves stop at ``n``. Each problem's estimator still uses all
of its graded samples (the unbiased pass@k / expected maj@k estimators accept a
per-problem n). Problems listed in ``problems.jsonl`` with no graded sample at all are
left out of the statistics and listed in ``RunData.missing_problems`` so a report can
say so instead of silently scoring them as wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from m1eval.records import BatchTiming, Completion, Grade, Problem
from m1eval.rundir.store import SAMPLES, ReadReport, RunStore, StoreError, find_runs

KEYS = ["problem_id", "sample_index"]
SAMPLE_COLUMNS = [f.name for f in fields(Completion)]
# Where each sample's line starts in samples.jsonl and how long it is (``load_run(..., text_offsets=True)``).
OFFSET_COLUMNS = ["line_offset", "line_bytes"]
GRADE_COLUMNS = [f.name for f in fields(Grade)]
BATCH_COLUMNS = [f.name for f in fields(BatchTiming)]


@dataclass
class RunData:
    """A run folder in memory. ``frame`` holds one row per *graded* sample, in problem order."""

    path: Path
    manifest: dict[str, Any]
    problems: list[Problem]
    samples: pd.DataFrame
    grades: pd.DataFrame
    batches: pd.DataFrame
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        task = self.manifest.get("task")
        if isinstance(task, dict) and task.get("name"):
            return str(task["name"])
        if isinstance(task, str) and task:
            return task
        if self.problems:
            return self.problems[0].task
        return self.path.parent.parent.name

    @property
    def model(self) -> str:
        model = self.manifest.get("model")
        if isinstance(model, dict) and model.get("name"):
            return str(model["name"])
        if isinstance(model, str) and model:
            return model
        return self.path.parent.name

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def label(self) -> str:
        """Short display name of the run for tables and legends."""
        return f"{self.model}/{self.run_id}"

    @cached_property
    def counts(self) -> pd.Series:
        """Graded samples per problem (problems with none are absent)."""
        return self.frame.groupby("problem_id", sort=False).size()

    @property
    def n(self) -> int:
        """Samples per problem every scored problem can supply (see the module docstring)."""
        return int(self.counts.min()) if len(self.counts) else 0

    @property
    def problem_ids(self) -> list[str]:
        """Ids of the scored problems (at least one graded sample), in problems.jsonl order."""
        return list(self.counts.index)

    @property
    def missing_problems(self) -> list[str]:
        have = set(self.counts.index)
        return [p.id for p in self.problems if p.id not in have]

    @property
    def ungraded(self) -> int:
        return int(len(self.samples) - len(self.frame))

    def graded_completions(self) -> list[Completion]:
        """The graded samples as ``Completion`` records, in samples.jsonl order (texts needed).

        For analyses that re-grade stored texts (sequential scaling cuts them at L tokens):
        they get the records from here rather than reopening the run folder.
        """
        if "text" not in self.samples:
            raise ValueError(f"{self.path}: loaded without completion texts (with_text=False); they are needed here")
        keys = set(zip(self.frame["problem_id"], self.frame["sample_index"]))
        graded = [key in keys for key in zip(self.samples["problem_id"], self.samples["sample_index"])]
        return [Completion.from_dict(row) for row in self.samples[graded].to_dict(orient="records")]

    def scores(self, key: str = "score") -> pd.Series | None:
        """Per-sample score from ``Completion.scores[key]`` aligned with ``frame``, or None if absent."""
        if "scores" not in self.frame:
            return None
        values = self.frame["scores"].map(lambda m: m.get(key) if isinstance(m, dict) else None)
        if values.isna().all():
            return None
        return values.astype(float)


def _problem_order(problems: list[Problem], ids: pd.Series) -> dict[str, int]:
    order = {p.id: i for i, p in enumerate(problems)}
    extra = [pid for pid in pd.unique(ids) if pid not in order]
    for pid in extra:
        order[pid] = len(order)
    return order


def scan_samples(path: Path) -> tuple[pd.DataFrame, ReadReport]:
    """samples.jsonl streamed line by line: every column but ``text``, plus each line's byte offset and length.

    Reads as ``RunStore.read_samples`` does (a torn last line and unreadable lines are
    reported and skipped, the first copy of a (problem, sample) wins) but never holds
    more than one line, so a run of long texts is indexed in bounded memory and a reader
    of one problem (``m1eval.view``) can seek to its samples' lines.
    """
    report = ReadReport(path)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    if path.exists():
        with path.open("rb") as handle:
            offset, number = 0, 0
            for raw in handle:
                number += 1
                start, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                try:
                    completion = Completion.from_dict(json.loads(raw))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    if not raw.endswith(b"\n"):  # the last line, whose write did not finish
                        report.truncated_tail = True
                    else:
                        report.bad_lines.append(number)
                    continue
                except (TypeError, ValueError):
                    report.bad_lines.append(-1)
                    continue
                if completion.key in seen:
                    continue
                seen.add(completion.key)
                row = completion.to_dict()
                del row["text"]
                row["line_offset"], row["line_bytes"] = start, len(raw)
                rows.append(row)
    report.rows = len(rows)
    columns = [c for c in SAMPLE_COLUMNS if c != "text"] + OFFSET_COLUMNS
    return pd.DataFrame(rows, columns=columns), report


def load_run(
    path: str | os.PathLike[str], *, require_grades: bool = True, with_text: bool = True, text_offsets: bool = False
) -> RunData:
    """Read a run folder. Without grades: raise (default) or return an empty ``frame``.

    ``with_text=False`` drops the completion texts after reading, for analyses of large
    runs that need only counts, tokens and grades. ``text_offsets=True`` never reads the
    texts into memory at all (``scan_samples``): ``samples`` and ``frame`` get each
    sample's line offset and length in samples.jsonl instead of ``text``.
    """
    store = RunStore(path)
    manifest = store.read_manifest()
    warnings: list[str] = []
    try:
        problems = store.read_problems()
    except StoreError as exc:
        problems = []
        warnings.append(str(exc))

    if text_offsets:
        samples, report = scan_samples(store.path / SAMPLES)
    else:
        completions, report = store.read_samples()
        samples = pd.DataFrame([c.to_dict() for c in completions], columns=SAMPLE_COLUMNS)
        if not with_text:
            samples = samples.drop(columns=["text"])
    if report.truncated_tail or report.bad_lines:
        warnings.append(report.summary())
    samples["problem_id"] = samples["problem_id"].astype(str)
    samples["sample_index"] = samples["sample_index"].astype("int64")

    timings, batch_report = store.read_batches()
    if batch_report.truncated_tail or batch_report.bad_lines:
        warnings.append(batch_report.summary())
    batches = pd.DataFrame([t.to_dict() for t in timings], columns=BATCH_COLUMNS)

    if store.has_grades():
        grades = store.read_grades()
        if "extracted_by" not in grades.columns:  # graded before extraction policies (grader < 1.3)
            grades["extracted_by"] = None
        missing = [c for c in GRADE_COLUMNS if c not in grades.columns]
        if missing:
            raise StoreError(f"{store.path / 'grades.parquet'}: missing column(s) {missing}")
        grades = grades[GRADE_COLUMNS].copy()
        grades["problem_id"] = grades["problem_id"].astype(str)
        grades["sample_index"] = grades["sample_index"].astype("int64")
        dupes = int(grades.duplicated(KEYS).sum())
        if dupes:
            warnings.append(f"{store.path / 'grades.parquet'}: {dupes} duplicate grade rows ignored (first kept)")
            grades = grades.drop_duplicates(KEYS, keep="first")
    elif require_grades:
        raise StoreError(f"{store.path}: no grades.parquet; run `m1eval grade {store.path}` first")
    else:
        grades = pd.DataFrame(columns=GRADE_COLUMNS)

    frame = samples.merge(grades, on=KEYS, how="inner", validate="one_to_one")
    stale = len(grades) - len(frame)
    if stale:
        warnings.append(f"{store.path}: {stale} grade rows have no matching sample and were ignored")
    order = _problem_order(problems, frame["problem_id"])
    frame = (
        frame.assign(_order=frame["problem_id"].map(order))
        .sort_values(["_order", "sample_index"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    frame["correct"] = frame["correct"].astype(bool)
    return RunData(
        path=Path(path),
        manifest=manifest,
        problems=problems,
        samples=samples,
        grades=grades.reset_index(drop=True),
        batches=batches,
        frame=frame,
        warnings=warnings,
    )


def load_runs(paths: Sequence[str | os.PathLike[str]], *, with_text: bool = True) -> list[RunData]:
    """Every run folder at or below ``paths``, each loaded once however often it is named (``StoreError`` names a bad path)."""
    if not paths:
        return []
    folders = {folder.resolve(): folder for folder in find_runs(paths)}
    return [load_run(folder, with_text=with_text) for folder in folders.values()]
