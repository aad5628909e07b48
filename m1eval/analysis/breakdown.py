"""A run's metrics per group of problems: MATH500 by level or subject, OlympiadBench by subject.

Papers report a benchmark's accuracy per level and per subject beside the overall number.
The groups come from the task's problem ``meta`` (``m1eval/tasks/<task>.toml`` names the
keys it keeps), so any such key works: ``level`` and ``subject`` for MATH500, ``subfield``
for OlympiadBench (asked for as ``subject`` it is used, since that task has no ``subject``).
Each group is summarised exactly as a whole run is (``m1eval.analysis.report.summarize_run``
on the run cut to the group's problems), so every metric carries its interval, computed on
that group's problems alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from m1eval.analysis.report import RunSummary, summarize_run
from m1eval.rundir.rundata import RunData

NO_GROUP = "(none)"  # problems whose meta lacks the key
ALIASES = {"subject": ("subfield",)}  # OlympiadBench calls its subject a subfield


class GroupError(ValueError):
    """The run's problems cannot be grouped as asked (no such meta key); the message names the run."""


@dataclass
class GroupSummary:
    """The summary of one run on the problems of one group."""

    key: str  # the meta key grouped by
    group: str  # its value
    summary: RunSummary


def meta_key(run: RunData, key: str) -> str:
    """The meta key ``key`` means for this run's task (``subject`` is OlympiadBench's ``subfield``)."""
    have = {k for p in run.problems for k in p.meta}
    if key in have:
        return key
    for alias in ALIASES.get(key, ()):
        if alias in have:
            return alias
    known = ", ".join(sorted(have)) or "none"
    raise GroupError(f"{run.label}: no problem of task {run.task} has meta key {key!r} (its keys: {known})")


def _order(value: str) -> tuple:
    """Groups in reading order: numbers by value ('2' before '10'), then words, the ungrouped last."""
    if value == NO_GROUP:
        return (2, 0.0, value)
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def problem_groups(run: RunData, key: str) -> dict[str, list[str]]:
    """Group value -> the run's scored problem ids with that value of meta ``key``, groups in reading order."""
    key = meta_key(run, key)
    meta = {p.id: p.meta for p in run.problems}
    groups: dict[str, list[str]] = {}
    for pid in run.problem_ids:
        value = meta.get(pid, {}).get(key)
        groups.setdefault(NO_GROUP if value is None or value == "" else str(value), []).append(pid)
    return {value: groups[value] for value in sorted(groups, key=_order)}


def run_on(run: RunData, problem_ids: list[str]) -> RunData:
    """The run restricted to ``problem_ids``: its graded samples, samples and problems (nothing read again)."""
    keep = set(problem_ids)
    return dataclasses.replace(
        run,
        frame=run.frame[run.frame["problem_id"].isin(keep)].reset_index(drop=True),
        samples=run.samples[run.samples["problem_id"].isin(keep)].reset_index(drop=True),
        problems=[p for p in run.problems if p.id in keep],
        warnings=[],
    )


def group_summaries(
    run: RunData,
    key: str,
    *,
    sign_flips: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    every_k: bool = False,
    metrics=None,
    target: str = "population",
    on_step: Callable[[str], None] | None = None,
) -> list[GroupSummary]:
    """``summarize_run`` of the run on each group of its problems (``problem_groups``)."""
    used = meta_key(run, key)
    out = []
    for value, ids in problem_groups(run, used).items():
        summary = summarize_run(
            run_on(run, ids),
            sign_flips=sign_flips,
            seed=seed,
            level=level,
            every_k=every_k,
            metrics=metrics,
            target=target,
            on_step=on_step,
        )
        out.append(GroupSummary(used, value, summary))
    return out
