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

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from m1eval.records import BatchTiming, Completion, Grade, Problem
from m1eval.rundir.golds import ProblemCheck, check_problems
from m1eval.rundir.sample_lines import read_lines
from m1eval.rundir.sample_meta import LINE_COLUMNS, SampleMeta, read_meta
from m1eval.rundir.store import SAMPLES, ReadReport, RunStore, StoreError, UnsafeRunFile, find_runs

KEYS = ["problem_id", "sample_index"]
SAMPLE_COLUMNS = [f.name for f in fields(Completion) if f.name != "text"]  # the texts stay on disk
TEXT_CHUNK_BYTES = 16 * 1024 * 1024  # texts one step of sequential scaling holds at once
# Where each sample's line starts in samples.jsonl and how long it is (``load_run(..., text_offsets=True)``).
OFFSET_COLUMNS = ["line_offset", "line_bytes"]
GRADE_COLUMNS = [f.name for f in fields(Grade)]
BATCH_COLUMNS = [f.name for f in fields(BatchTiming)]


@dataclass
class RunData:
    """A run folder in memory. ``frame`` holds one row per *graded* sample, in problem order.

    No text is held: ``samples`` and ``frame`` carry every other field of the completions,
    and ``lines`` where each one's line lies in samples.jsonl, so ``graded_completions`` and
    ``graded_chunks`` read the texts from disk when an analysis needs them.
    """

    path: Path
    manifest: dict[str, Any]
    problems: list[Problem]
    samples: pd.DataFrame
    grades: pd.DataFrame
    batches: pd.DataFrame
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    lines: pd.DataFrame | None = None  # problem_id, sample_index, offset, length (None: loaded with_text=False)
    # problems.jsonl against the hashes recorded at generation: a modified run is marked wherever it is shown
    problems_check: ProblemCheck = field(default_factory=lambda: ProblemCheck("unverified"))

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
        """The graded samples as ``Completion`` records, in samples.jsonl order (texts read from disk).

        For analyses that re-grade stored texts (sequential scaling cuts them at L tokens):
        they get the records from here rather than reopening the run folder. All texts at
        once; ``graded_chunks`` gives them a few problems at a time.
        """
        graded = self._graded_lines()
        return read_lines(self.path / SAMPLES, graded["offset"].tolist(), graded["length"].tolist())

    def graded_chunks(self, max_bytes: int = TEXT_CHUNK_BYTES) -> Iterator[list[Completion]]:
        """``graded_completions`` a few whole problems at a time (about ``max_bytes`` of lines each),
        problems in the order they first appear in samples.jsonl, each problem's samples in file order."""
        graded = self._graded_lines()
        for rows in self._chunk_rows(graded, max_bytes):
            yield self._read(graded.loc[rows])

    def graded_chunk_count(self, max_bytes: int = TEXT_CHUNK_BYTES) -> int:
        """How many chunks ``graded_chunks(max_bytes)`` yields (for a progress total)."""
        return sum(1 for _ in self._chunk_rows(self._graded_lines(), max_bytes))

    @staticmethod
    def _chunk_rows(graded: pd.DataFrame, max_bytes: int) -> Iterator[list[int]]:
        codes, _ = pd.factorize(graded["problem_id"])  # problems numbered in the order they first appear
        by_problem = np.argsort(codes, kind="stable")  # rows problem by problem, in file order within one
        ends = np.cumsum(np.bincount(codes))
        sizes = np.bincount(codes, weights=graded["length"].to_numpy(dtype=np.int64)).astype(np.int64)
        labels = graded.index.to_numpy()
        start = held = 0
        for p, end in enumerate(ends):
            held += int(sizes[p])
            if held >= max_bytes or p == len(ends) - 1:
                yield labels[by_problem[start:end]].tolist()
                start, held = int(end), 0

    def _read(self, rows: pd.DataFrame) -> list[Completion]:
        try:
            return read_lines(self.path / SAMPLES, rows["offset"].tolist(), rows["length"].tolist())
        except (OSError, ValueError) as exc:
            raise StoreError(str(exc)) from None

    def _graded_lines(self) -> pd.DataFrame:
        if self.lines is None:
            raise ValueError(f"{self.path}: loaded without completion texts (with_text=False); they are needed here")
        keys = set(zip(self.frame["problem_id"], self.frame["sample_index"]))
        graded = [key in keys for key in zip(self.lines["problem_id"], self.lines["sample_index"])]
        return self.lines[graded].reset_index(drop=True)

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


def load_run(
    path: str | os.PathLike[str], *, require_grades: bool = True, with_text: bool = True, text_offsets: bool = False
) -> RunData:
    """Read a run folder (never its texts). Without grades: raise (default) or return an empty ``frame``.

    The samples come from the metadata view (``m1eval.rundir.sample_meta``), so the cost does not
    grow with the texts. ``with_text=False`` also forgets where the texts lie, for callers
    that must not read them (``graded_completions`` then raises). ``text_offsets=True`` (the
    read-only viewer) puts each sample's line offset and length in ``samples``
    (``line_offset``, ``line_bytes``) and writes nothing, not even the metadata view.
    """
    store = RunStore(path)
    manifest = store.read_manifest()
    grades = store.read_grades() if store.has_grades() else None
    if grades is None and require_grades:
        raise StoreError(f"{store.path}: no grades.parquet; run `m1eval grade {store.path}` first")
    meta = read_meta(store, keep=not text_offsets)
    return assemble_run(store, manifest, meta, grades, with_text=with_text, text_offsets=text_offsets)


def sample_line_index(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, ReadReport]:
    """samples.jsonl's metadata without the texts, with each line's offset and length, writing nothing.

    Reads as ``RunStore.read_samples`` does (a torn last line and unreadable lines are reported
    and skipped, the first copy of a (problem, sample) wins), through the metadata view.
    """
    meta = read_meta(RunStore(Path(path).parent), keep=False)
    frame = _with_offsets(meta)
    frame["problem_id"] = frame["problem_id"].astype(str)
    frame["sample_index"] = frame["sample_index"].astype("int64")
    return frame.reset_index(drop=True), meta.report


def _with_offsets(meta: SampleMeta) -> pd.DataFrame:
    """The sample columns with where each sample's line stands in samples.jsonl (offset, bytes)."""
    return meta.frame[[*SAMPLE_COLUMNS, *LINE_COLUMNS]].rename(columns=dict(zip(LINE_COLUMNS, OFFSET_COLUMNS)))


def assemble_run(
    store: RunStore,
    manifest: dict[str, Any],
    meta: SampleMeta,
    grades: pd.DataFrame | None,
    *,
    with_text: bool = True,
    text_offsets: bool = False,
) -> RunData:
    """A ``RunData`` from parts already read (grading hands over its grades and metadata, see
    ``m1eval.pipeline.stages``); problems and batches are read here. ``grades`` None: none yet."""
    warnings: list[str] = []
    try:
        problems = store.read_problems()
    except UnsafeRunFile:
        raise  # a link is refused, not read around
    except StoreError as exc:
        problems = []
        warnings.append(str(exc))
    overlong = manifest.get("overlong_total") if isinstance(manifest, dict) else None
    if isinstance(overlong, int) and overlong > 0:  # m1eval.engines.replies: stored, recorded, said again here
        warnings.append(
            f"{store.path}: {overlong} sample(s) longer than max_tokens allows, as the engine sent them "
            "(the manifest's 'overlong' lists them)"
        )
    problems_check = check_problems(manifest, problems) if problems else ProblemCheck("unverified", [], "no problems")
    if problems_check.is_modified:
        warnings.append(f"{store.path}: MODIFIED: {problems_check.describe()}; its numbers are not those of the run")

    report = meta.report
    if report.truncated_tail or report.bad_lines:
        warnings.append(report.summary())
    if text_offsets:  # each sample's line in samples.jsonl, beside its metadata (the viewer reads one problem's)
        samples = _with_offsets(meta)
    else:
        samples = meta.frame[SAMPLE_COLUMNS].copy()
    samples["problem_id"] = samples["problem_id"].astype(str)
    samples["sample_index"] = samples["sample_index"].astype("int64")
    lines = meta.frame[[*KEYS, *LINE_COLUMNS]].copy() if with_text else None

    timings, batch_report = store.read_batches()
    if batch_report.truncated_tail or batch_report.bad_lines:
        warnings.append(batch_report.summary())
    batches = pd.DataFrame([t.to_dict() for t in timings], columns=BATCH_COLUMNS)

    if grades is not None:
        grades = grades.copy()
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
        path=Path(store.path),
        manifest=manifest,
        problems=problems,
        samples=samples,
        grades=grades.reset_index(drop=True),
        batches=batches,
        frame=frame,
        warnings=warnings,
        lines=lines,
        problems_check=problems_check,
    )


def load_runs(paths: Sequence[str | os.PathLike[str]], *, with_text: bool = True) -> list[RunData]:
    """Every run folder at or below ``paths``, each loaded once however often it is named (``StoreError`` names a bad path)."""
    if not paths:
        return []
    folders = {folder.resolve(): folder for folder in find_runs(paths)}
    return [load_run(folder, with_text=with_text) for folder in folders.values()]
