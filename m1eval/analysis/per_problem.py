"""One row per problem of a run: what a paper's per-problem scatter or error analysis needs.

``problem_table`` reads only the graded metadata (``RunData.frame``: correctness, answer
clusters, finish reasons, token counts), never the texts, and gives per problem: pass@1,
pass@k and maj@k at the run's k grid (exact estimators over all of its samples), the number
of answer clusters, the majority answer (the largest cluster's most common raw answer),
whether it is right and whether the largest clusters tie, the shares of samples without an
answer and cut off by the token limit, and the mean completion tokens. ``m1eval report
--per-problem`` writes it for every run; the viewer's problem table shows the same numbers
(``majority_answers`` is shared with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from m1eval.analysis.intervals import ProblemSet, per_problem
from m1eval.analysis.metrics import k_grid
from m1eval.rundir.rundata import RunData

META_TEXT_LIMIT = 40  # meta values longer than this (a solution's text) stay out of the table


def cluster_table(frame: pd.DataFrame) -> pd.DataFrame:
    """(problem, cluster) -> samples in it, whether it is right, its most common raw answer; answered samples only."""
    answered = frame[frame["cluster"].notna()]
    sizes = answered.groupby(["problem_id", "cluster"], sort=False).agg(
        count=("sample_index", "size"), correct=("correct", "max")
    )
    answers = answered.groupby(["problem_id", "cluster", "answer"], sort=False, dropna=False).size()
    top = (
        answers.reset_index(name="m")
        .sort_values("m", ascending=False, kind="stable")
        .drop_duplicates(["problem_id", "cluster"])
        .set_index(["problem_id", "cluster"])["answer"]
    )
    return sizes.join(top.rename("answer"))


def majority_answers(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem with an answer: clusters, the largest cluster's answer, whether it is right, and
    whether another cluster is as large (the vote over all n samples is then a coin flip).

    Among equally large clusters the first in sample order is the one named (as the viewer shows it).
    """
    clusters = cluster_table(frame).reset_index()
    rows: dict[Any, dict[str, Any]] = {}
    for pid, count, right, answer in zip(
        clusters["problem_id"], clusters["count"], clusters["correct"], clusters["answer"]
    ):
        row = rows.setdefault(pid, {"clusters": 0, "count": 0, "majority": None, "right": False, "tie": False})
        row["clusters"] += 1
        if count > row["count"]:
            missing = answer is None or (isinstance(answer, float) and np.isnan(answer))
            row.update(count=int(count), majority=None if missing else str(answer), right=bool(right), tie=False)
        elif count == row["count"]:
            row["tie"] = True
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["clusters", "count", "majority", "right", "tie"])
    table.index.name = "problem_id"
    return table.rename(columns={"count": "majority_samples", "right": "majority_correct", "tie": "majority_tie"})


def _meta_columns(run: RunData) -> list[str]:
    """Meta keys whose values are short scalars (level, subject; not a solution's text)."""
    keys: dict[str, bool] = {}
    for problem in run.problems:
        for key, value in problem.meta.items():
            short = (
                value is None
                or isinstance(value, (bool, int, float))
                or (isinstance(value, str) and len(value) <= META_TEXT_LIMIT)
            )
            keys[key] = keys.get(key, True) and short
    return [key for key, short in keys.items() if short]


def sample_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem: samples, pass1 (share right), hits, no_answer, truncated, mean_tokens.

    One definition for `report --per-problem` and the viewer's problem table; a sample without an
    answer is one with no extracted answer or no answer class, as in the report's no-answer rate."""
    work = pd.DataFrame(
        {
            "problem_id": frame["problem_id"].to_numpy(),
            "correct": frame["correct"].to_numpy(dtype=float),
            "no_answer": (frame["cluster"].isna() | frame["answer"].isna()).to_numpy(dtype=float),
            "truncated": (frame["finish_reason"] == "length").to_numpy(dtype=float),
            "tokens": frame["completion_tokens"].to_numpy(dtype=float),
        }
    )
    return work.groupby("problem_id", sort=False).agg(
        samples=("correct", "size"),
        pass1=("correct", "mean"),
        hits=("correct", "sum"),
        no_answer=("no_answer", "mean"),
        truncated=("truncated", "mean"),
        mean_tokens=("tokens", "mean"),
    )


def problem_table(run: RunData, label: str | None = None) -> pd.DataFrame:
    """One row per scored problem of ``run`` in problems.jsonl order (see the module docstring)."""
    frame = run.frame
    problems = ProblemSet.from_frame(frame)
    ks = k_grid(problems.n)
    stats = sample_stats(frame)
    out = pd.DataFrame(index=pd.Index(problems.ids, name="problem_id"))
    meta = {p.id: p.meta for p in run.problems}
    for key in _meta_columns(run):
        out[key] = [meta.get(pid, {}).get(key) for pid in problems.ids]
    out["samples"] = stats["samples"].reindex(out.index).astype(int)
    for metric in ("pass", "maj"):
        values = per_problem(problems, ks, metric)
        for j, k in enumerate(ks):
            out[f"{metric}@{k}"] = values[:, j]
    majority = majority_answers(frame).reindex(out.index)
    out["clusters"] = majority["clusters"].fillna(0).astype(int)
    out["majority_answer"] = majority["majority"].astype(object).where(majority["majority"].notna(), None)
    out["majority_correct"] = majority["majority_correct"].fillna(False).astype(bool)
    out["majority_tie"] = majority["majority_tie"].fillna(False).astype(bool)
    out["no_answer"] = stats["no_answer"].reindex(out.index)
    out["truncated"] = stats["truncated"].reindex(out.index)
    out["mean_tokens"] = stats["mean_tokens"].reindex(out.index)
    out = out.reset_index()
    for i, (name, value) in enumerate((("task", run.task), ("model", run.model), ("run", run.run_id))):
        out.insert(i, name, value)
    out.insert(3, "label", label or run.label)
    return out


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as plain JSON-ready dicts (NaN: None, numpy scalars: Python numbers)."""
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            if hasattr(value, "item") and not isinstance(value, str):
                value = value.item()
            clean[str(key)] = None if isinstance(value, float) and not np.isfinite(value) else value
        out.append(clean)
    return out


def per_problem_frame(runs: Sequence[RunData], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """``problem_table`` of every run, stacked: one row per run and problem.

    Columns ``pass@k``/``maj@k`` are those of every run's k grid; a run with fewer samples has
    none (NaN) at the larger k. A scatter of two runs is one pivot:
    ``frame.pivot(index="problem_id", columns="label", values="pass@1")``.
    """
    labels = list(labels) if labels is not None else [run.label for run in runs]
    tables = [problem_table(run, label) for run, label in zip(runs, labels)]
    if not tables:
        return pd.DataFrame()
    frame = pd.concat(tables, ignore_index=True)
    metric_columns = sorted(
        (c for c in frame.columns if "@" in c), key=lambda c: (c.split("@")[0] != "pass", int(c.split("@")[1]))
    )
    rest = [c for c in frame.columns if "@" not in c]
    at = rest.index("samples") + 1
    return frame[[*rest[:at], *metric_columns, *rest[at:]]]
