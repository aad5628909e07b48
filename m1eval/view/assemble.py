"""What each page shows, as plain records: numbers through the report's functions, rows per problem.

The runs page shows ``report.summarize_run``'s pass@1 and maj@k with their intervals, and
the comparison page ``report.compare_runs``' paired differences, so the viewer and
``m1eval report`` cannot disagree. Per-problem values (pass@n, maj@n) come from
``bootstrap.per_problem``, the estimators every curve averages.
"""

from __future__ import annotations

import math
import shlex
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from m1eval.analysis import intervals as BS
from m1eval.analysis.metrics import k_grid
from m1eval.analysis.per_problem import majority_answers, sample_stats
from m1eval.analysis.report import compare_runs
from m1eval.grading.extract import DEFAULT_POLICY
from m1eval.records import Problem
from m1eval.rundir.rundata import RunData
from m1eval.view.catalog import LoadedRun, RunSlot, ViewError
from m1eval.view.texts import Part, read_texts, split_completion

META_COLUMNS = ("level", "subject", "type", "year")  # problem metadata shown as table columns when a task has them
NORMALISE_SECONDS = 1.0  # hard deadline of one answer's normalisation (in a grading.pool worker)
STARTUP_SECONDS = 60.0  # how long a new normalisation worker may take to start
CHECK_INLINE_CHARS = 2_000  # a completion up to this long is put whole into its `m1eval check` command


# ---------------------------------------------------------------------------- runs page


@dataclass
class Interval:
    value: float
    low: float
    high: float

    @property
    def ok(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass
class RunRow:
    """One line of the runs page."""

    key: str
    label: str
    path: str
    error: str | None = None
    model: str = ""
    run_id: str = ""
    n: int = 0
    problems: int = 0
    missing: int = 0
    pass1: Interval | None = None
    maj: Interval | None = None
    maj_k: int = 0
    no_answer: float = math.nan
    truncated: float = math.nan
    grader: str = ""
    marks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _curve_at(loaded: LoadedRun, metric: str, k: int | None = None) -> tuple[int, Interval] | None:
    curve = loaded.summary.curves.get(metric)
    if curve is None or not len(curve.ks):
        return None
    i = len(curve.ks) - 1 if k is None else int(np.searchsorted(curve.ks, k))
    return int(curve.ks[i]), Interval(float(curve.point[i]), float(curve.low[i]), float(curve.high[i]))


def run_marks(run: RunData) -> list[str]:
    """Why a run's numbers need care: unpinned rows, edited problems, missing or ungraded samples, unfinished generation."""
    marks = []
    task = run.manifest.get("task")
    summary_unpinned = isinstance(task, dict) and task.get("unpinned")
    if summary_unpinned:
        marks.append("unpinned")
    if run.problems_check.is_modified:
        marks.append("modified")
    stage = (run.manifest.get("stages") or {}).get("generate") or {}
    if run.missing_problems or run.ungraded or (stage and stage.get("state") != "done") or run.counts.nunique() > 1:
        marks.append("incomplete")
    return marks


def run_row(slot: RunSlot) -> RunRow:
    if slot.loaded is None:
        return RunRow(slot.key, slot.label, str(slot.path), error=slot.error)
    run, s = slot.loaded.run, slot.loaded.summary
    maj = _curve_at(slot.loaded, "maj")
    graders = sorted({str(g) for g in run.frame["grader_version"].dropna().unique()})
    marks = run_marks(run)
    if s.unpinned and "unpinned" not in marks:
        marks.insert(0, "unpinned")
    return RunRow(
        slot.key,
        run.label,
        str(run.path),
        model=run.model,
        run_id=run.run_id,
        n=s.n,
        problems=s.n_problems,
        missing=s.missing_problems,
        pass1=Interval(s.pass1, s.pass1_low, s.pass1_high),
        maj=maj[1] if maj else None,
        maj_k=maj[0] if maj else 0,
        no_answer=s.no_answer_rate,
        truncated=s.truncation_rate,
        grader=", ".join(graders),
        marks=marks,
        warnings=list(s.warnings),
    )


# ---------------------------------------------------------------------------- one run


@dataclass
class ProblemRow:
    """One line of a run's problem table."""

    index: int  # position in problems.jsonl: the problem's page number
    id: str
    meta: dict[str, str]
    gold: str
    samples: int
    pass1: float
    pass_n: float
    maj_n: float
    majority: str | None  # the largest cluster's most common answer
    majority_right: bool
    clusters: int
    no_answer: float
    truncated: float
    mean_tokens: float
    flags: list[str]  # "selection", "never", "always"


def _problem_index(run: RunData) -> dict[str, int]:
    return {p.id: i for i, p in enumerate(run.problems)}


def _meta_text(value: Any) -> str:
    return "" if value is None else str(value)


def meta_columns(run: RunData) -> list[str]:
    return [c for c in META_COLUMNS if any(c in p.meta for p in run.problems)]


def per_problem_values(run: RunData, metric: str, k: int) -> dict[str, float]:
    problems = BS.ProblemSet.from_frame(run.frame)
    values = BS.per_problem(problems, [k], metric)[:, 0]
    return dict(zip(problems.ids, values.tolist()))


def problem_rows(loaded: LoadedRun) -> list[ProblemRow]:
    """The run page's table: one row per scored problem, in problems.jsonl order (cached per load)."""
    if "rows" in loaded.cache:
        return loaded.cache["rows"]
    run = loaded.run
    frame = run.frame
    n = run.n
    pass_n = per_problem_values(run, "pass", n)
    maj_n = per_problem_values(run, "maj", n)
    stats = sample_stats(frame)
    majority = majority_answers(frame)  # m1eval.analysis.per_problem: the table `report --per-problem` writes
    n_clusters = majority["clusters"].to_dict()
    winners = {
        pid: (int(row.majority_samples), bool(row.majority_correct), row.majority)
        for pid, row in zip(majority.index, majority.itertuples())
    }
    index = _problem_index(run)
    columns = meta_columns(run)
    problems = {p.id: p for p in run.problems}
    rows = []
    for st in stats.itertuples():
        pid = st.Index
        problem = problems.get(pid)
        solved_any, solved_all = st.hits > 0, st.hits == st.samples
        flags = [
            *(["selection"] if solved_any and maj_n[pid] < 1.0 else []),
            *([] if solved_any else ["never"]),
            *(["always"] if solved_all else []),
        ]
        _count, right, answer = winners.get(pid, (0, False, None))
        rows.append(
            ProblemRow(
                index=index.get(pid, -1),
                id=str(pid),
                meta={c: _meta_text(problem.meta.get(c)) if problem else "" for c in columns},
                gold=" | ".join(problem.answers) if problem else "",
                samples=int(st.samples),
                pass1=float(st.pass1),
                pass_n=float(pass_n[pid]),
                maj_n=float(maj_n[pid]),
                majority=answer,
                majority_right=right,
                clusters=int(n_clusters.get(pid, 0)),
                no_answer=float(st.no_answer),
                truncated=float(st.truncated),
                mean_tokens=float(st.mean_tokens),
                flags=flags,
            )
        )
    loaded.cache["rows"] = rows
    return rows


# ---------------------------------------------------------------------------- one problem


@dataclass
class Cluster:
    """One equivalence class of a problem's answers, as majority voting sees it."""

    id: int
    answer: str  # the most common raw answer in the class
    normalised: str | None  # the grader's normal form of it (None: not available in time)
    variants: list[tuple[str, int]]  # other raw answers in the class, with counts
    count: int
    share: float
    correct: bool
    winner: bool


@dataclass
class SampleView:
    index: int
    status: str
    finish_reason: str
    tokens: int
    rule: str | None
    correct: bool
    cluster: int | None
    answer: str | None
    parts: list[Part]
    check: str  # an `m1eval check` command that reproduces the verdict
    check_note: str


@dataclass
class ProblemPage:
    problem: Problem
    index: int
    clusters: list[Cluster]
    no_answer: int
    samples: list[SampleView]
    policy: str
    tie: bool  # the largest clusters are tied: the vote at k = n is a coin flip
    gold_found: bool
    total: int  # graded samples of the problem


def problem_at(run: RunData, index: int) -> Problem | None:
    return run.problems[index] if 0 <= index < len(run.problems) else None


class NormalForms:
    """The grader's normal form of answers, computed by its cheap tiers in a guarded worker process.

    Model answers are untrusted: each is normalised in a ``grading.pool.WorkerPool`` child
    with a hard deadline and a memory limit (never sympy), all of one page in one batch,
    and remembered. A missed deadline leaves that answer without a normal form.
    """

    def __init__(self, seconds: float = NORMALISE_SECONDS) -> None:
        self.seconds = seconds
        self._pool = None
        self._ready_at = -1  # the pool's restart count when its worker was last known started
        self._known: dict[tuple, str | None] = {}
        self._lock = threading.Lock()

    def get(self, items: Sequence[tuple[str, str, str | None, str | None]]) -> dict[tuple, str | None]:
        """(gold, answer, answer format, unit) -> normal form (None: not available)."""
        from m1eval.grading.pool import OK

        with self._lock:
            todo = [item for item in dict.fromkeys(items) if item not in self._known]
            if todo:
                jobs = [("check-light", (g, a, None, fmt, None, {"unit": u} if u else None)) for g, a, fmt, u in todo]
                for item, (status, value) in zip(todo, self._ready().run(jobs)):
                    self._known[item] = value.answer_normalized if status == OK else None
            return {item: self._known[item] for item in items}

    def _worker(self):  # noqa: ANN202
        from m1eval.grading.pool import WorkerPool

        if self._pool is None:  # the grader's forkserver (its preload): started once, seconds
            self._pool = WorkerPool(1, timeout=self.seconds, memory_mb=512)
        return self._pool

    def _ready(self):  # noqa: ANN202
        """The pool with a started worker: a new child first imports what the main module imports
        (seconds on a busy machine), which must not count against an answer's deadline."""
        pool = self._worker()
        if self._ready_at != pool.restarts:
            pool.timeout = STARTUP_SECONDS
            try:
                pool.run([("sleep", 0)])
            finally:
                pool.timeout = self.seconds
            self._ready_at = pool.restarts
        return pool

    def warm(self) -> None:
        """Start the worker now, so the first problem page does not wait for it."""
        with self._lock:
            self._ready()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close(force=True)
                self._pool = None


def extraction_policy(run: RunData) -> str:
    grade = (run.manifest.get("stages") or {}).get("grade") or {}
    return str(grade.get("extraction") or DEFAULT_POLICY)


def check_command(problem: Problem, answer: str | None, text: str, policy: str) -> tuple[str, str]:
    """A shell command that gives this sample's verdict, and what it checks."""
    gold = problem.answers[0] if problem.answers else ""
    tail = [] if problem.answer_format in (None, "expression") else ["--answer-format", problem.answer_format]
    tolerance = problem.meta.get("tolerance") if isinstance(problem.meta, dict) else None
    if tolerance is not None:
        tail += ["--tolerance", str(tolerance)]
    several = f" against the first of {len(problem.answers)} golds" if len(problem.answers) > 1 else ""
    if len(text) <= CHECK_INLINE_CHARS:
        cmd = ["m1eval", "check", gold, text, "--mode", "completion", "--extraction", policy, *tail]
        return shlex.join(cmd), f"the whole completion, extracted as grade did{several}"
    if answer is not None:
        cmd = ["m1eval", "check", gold, answer, "--mode", "bare", *tail]
        return shlex.join(cmd), f"the extracted answer (the completion has {len(text):,} characters){several}"
    cmd = ["m1eval", "check", gold, "--file", "completion.txt", "--mode", "completion", "--extraction", policy, *tail]
    return shlex.join(cmd), f"the completion saved as completion.txt ({len(text):,} characters){several}"


def _rows_of(loaded: LoadedRun, problem_id: str) -> pd.DataFrame:
    """A problem's rows of the frame, by a positional index built once per load."""
    groups = loaded.cache.get("groups")
    if groups is None:
        groups = loaded.cache["groups"] = loaded.run.frame.groupby("problem_id", sort=False).indices
    return loaded.run.frame.iloc[groups.get(problem_id, [])]


def clusters_page(loaded: LoadedRun, problem_id: str, forms: NormalForms | None = None) -> ProblemPage | None:
    """A problem's question, golds and answer clusters without its texts (the comparison's side by side)."""
    run = loaded.run
    index = _problem_index(run).get(problem_id)
    if index is None:
        return None
    rows = _rows_of(loaded, problem_id)
    return _page(
        run.problems[index], index, rows, problem_clusters(run.problems[index], rows, forms), [], extraction_policy(run)
    )


def _page(
    problem: Problem, index: int, rows: pd.DataFrame, clusters: list[Cluster], samples: list[SampleView], policy: str
) -> ProblemPage:
    top = sorted((c.count for c in clusters), reverse=True)
    return ProblemPage(
        problem,
        index,
        clusters,
        int(rows["cluster"].isna().sum()),
        samples,
        policy,
        tie=len(top) > 1 and top[0] == top[1],
        gold_found=any(c.correct for c in clusters),
        total=len(rows),
    )


def problem_page(loaded: LoadedRun, index: int, forms: NormalForms | None = None) -> ProblemPage | None:
    """Question, golds, answer clusters and every sample (texts read now, for this problem only)."""
    run = loaded.run
    problem = problem_at(run, index)
    if problem is None:
        return None
    rows = _rows_of(loaded, problem.id)
    texts = read_texts(
        run.path, list(zip(rows["problem_id"], rows["sample_index"], rows["line_offset"], rows["line_bytes"]))
    )
    clusters = problem_clusters(problem, rows, forms)
    policy = extraction_policy(run)
    samples = []
    for r in rows.itertuples(index=False):
        answer = None if pd.isna(r.answer) else str(r.answer)
        text = texts.get(int(r.sample_index), "")
        cmd, note = check_command(problem, answer, text, policy)
        samples.append(
            SampleView(
                index=int(r.sample_index),
                status=str(r.status),
                finish_reason=str(r.finish_reason),
                tokens=int(r.completion_tokens),
                rule=None if pd.isna(r.extracted_by) else str(r.extracted_by),
                correct=bool(r.correct),
                cluster=None if pd.isna(r.cluster) else int(r.cluster),
                answer=answer,
                parts=split_completion(text, answer),
                check=cmd,
                check_note=note,
            )
        )
    return _page(problem, index, rows, clusters, samples, policy)


def problem_clusters(problem: Problem, rows: pd.DataFrame, forms: NormalForms | None) -> list[Cluster]:
    """The answer clusters of one problem's graded rows, largest first; the vote winner marked."""
    total = len(rows)
    answers: dict[int, Counter] = {}
    correct: dict[int, bool] = {}
    for cluster, answer, right in zip(rows["cluster"].tolist(), rows["answer"].tolist(), rows["correct"].tolist()):
        if cluster is None or pd.isna(cluster):
            continue
        cid = int(cluster)
        answers.setdefault(cid, Counter())["" if answer is None or answer != answer else str(answer)] += 1
        correct[cid] = correct.get(cid, False) or bool(right)
    unit = problem.meta.get("unit") if isinstance(problem.meta, dict) else None
    unit = unit if isinstance(unit, str) else None
    gold = problem.answers[0] if problem.answers else ""
    tops = {cid: counts.most_common() for cid, counts in answers.items()}
    wanted = [
        (gold, top[0][0], problem.answer_format, unit) for top in tops.values() if gold.strip() and top[0][0].strip()
    ]
    known = forms.get(wanted) if forms is not None and wanted else {}
    out = []
    for cid, top in tops.items():
        count = sum(answers[cid].values())
        out.append(
            Cluster(
                id=cid,
                answer=top[0][0],
                normalised=known.get((gold, top[0][0], problem.answer_format, unit)),
                variants=[(a, c) for a, c in top[1:6]],
                count=count,
                share=count / total if total else 0.0,
                correct=correct[cid],
                winner=False,
            )
        )
    out.sort(key=lambda c: (-c.count, c.id))
    if out:
        out[0].winner = True
    return out


# ---------------------------------------------------------------------------- two runs


@dataclass
class PairRow:
    index_a: int
    id: str
    pass1_a: float
    pass1_b: float
    maj_a: float
    maj_b: float
    flags: list[str]  # "a-only": A's vote right and B's wrong; "b-only": the reverse

    @property
    def diff_pass1(self) -> float:
        return self.pass1_a - self.pass1_b

    @property
    def diff_maj(self) -> float:
        return self.maj_a - self.maj_b


@dataclass
class PairPage:
    k: int
    comparisons: list[BS.Comparison]
    rows: list[PairRow]
    only_a: int
    only_b: int


def pair_page(a: LoadedRun, b: LoadedRun) -> PairPage:
    """A minus B on their shared problems: ``report.compare_runs`` and the per-problem values behind it."""
    key = ("pair", b.run.path, b.signature)
    if key in a.cache:
        return a.cache[key]
    try:
        comparisons = compare_runs(
            [a.run, b.run],
            baseline=1,
            sign_flips=a.summary.curves["pass"].sign_flips or 1000,
            level=a.summary.curves["pass"].level,
        )
    except ValueError as exc:  # no shared problems, or too few samples to pair
        raise ViewError(f"{a.run.label} and {b.run.label} cannot be compared: {exc}") from None
    ids_b = set(b.run.problem_ids)
    shared = [pid for pid in a.run.problem_ids if pid in ids_b]
    k = k_grid(min(a.run.n, b.run.n))[-1]
    values = {
        name: per_problem_values(run.run, metric, kk)
        for name, run, metric, kk in (
            ("pa", a, "pass", 1),
            ("pb", b, "pass", 1),
            ("ma", a, "maj", k),
            ("mb", b, "maj", k),
        )
    }
    index = _problem_index(a.run)
    rows = []
    for pid in shared:
        ma, mb = values["ma"][pid], values["mb"][pid]
        flags = ["a-only"] if ma > 0.5 > mb else (["b-only"] if mb > 0.5 > ma else [])
        rows.append(PairRow(index.get(pid, -1), pid, values["pa"][pid], values["pb"][pid], ma, mb, flags))
    page = PairPage(k, comparisons, rows, len(a.run.problem_ids) - len(shared), len(ids_b) - len(shared))
    a.cache[key] = page
    return page
