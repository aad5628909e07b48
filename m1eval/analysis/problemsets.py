"""Which problems a comparison is on: the problems every compared run of a task scored.

Two runs scored on different problems are two different tests, so every figure and table
that puts runs side by side uses one rule: the runs of a task are cut to the problems all
of them scored (``on_shared_problems``), and the coverage says how many that leaves and how
many each run had. ``m1eval budget`` prices and ranks on them, ``m1eval plot`` draws every
figure on them, the notebook does the same; a run shown alone keeps all of its problems.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from m1eval.analysis.curves import CurveError
from m1eval.rundir.rundata import RunData


@dataclass
class ProblemCoverage:
    """The problems every run of a task scored, and how many each run scored on its own."""

    shared: list[str]
    scored: dict[str, int]  # label -> problems with at least one graded sample

    @property
    def differs(self) -> bool:
        return any(count != len(self.shared) for count in self.scored.values())

    def note(self, what: str = "every run is priced, ranked and compared") -> str | None:
        """What was left out and why, or None when every run scored the same problems."""
        if not self.differs:
            return None
        each = ", ".join(f"{label}: {count}" for label, count in self.scored.items())
        return (
            f"the runs scored different problems ({each}); {what} on the {len(self.shared)} problems all of them scored"
        )


def on_shared_problems(runs: Sequence[RunData], labels: Sequence[str]) -> tuple[list[RunData], ProblemCoverage]:
    """The runs cut to the problems all of them scored (in the first run's order), with the counts.

    A cut run keeps its manifest and problems; only ``frame`` (the graded samples every
    statistic reads) loses the other problems' rows. Raises ``CurveError`` when they share none.
    """
    if not runs:
        raise CurveError("no runs to compare")
    common = set(runs[0].problem_ids).intersection(*(run.problem_ids for run in runs[1:]))
    shared = [pid for pid in runs[0].problem_ids if pid in common]
    coverage = ProblemCoverage(shared, {label: len(run.problem_ids) for run, label in zip(runs, labels)})
    if not shared:
        each = ", ".join(f"{label}: {count}" for label, count in coverage.scored.items())
        raise CurveError(f"task {runs[0].task}: the runs share no scored problem ({each}); nothing to compare")
    if not coverage.differs:
        return list(runs), coverage
    cut = []
    for run in runs:
        keep = run.frame["problem_id"].isin(common)
        cut.append(dataclasses.replace(run, frame=run.frame[keep].reset_index(drop=True)))
    return cut, coverage


def by_task(runs: Sequence[RunData], labels: Sequence[str]) -> list[tuple[str, list[RunData], list[str]]]:
    """(task, its runs, their labels), tasks in the order they first appear."""
    out: dict[str, tuple[list[RunData], list[str]]] = {}
    for run, label in zip(runs, labels):
        group, names = out.setdefault(run.task, ([], []))
        group.append(run)
        names.append(label)
    return [(task, group, names) for task, (group, names) in out.items()]


def shared_by_task(
    runs: Sequence[RunData], labels: Sequence[str]
) -> tuple[list[RunData], list[ProblemCoverage], list[str]]:
    """Every task's runs cut to that task's shared problems, in input order, with each task's coverage
    and one note per task whose runs scored different problems (for figures and tables)."""
    cut_of: dict[int, RunData] = {}
    coverages, notes = [], []
    position = {id(run): i for i, run in enumerate(runs)}
    for task, group, names in by_task(runs, labels):
        cut, coverage = on_shared_problems(group, names)
        coverages.append(coverage)
        note = coverage.note("every figure shows them")
        if note:
            notes.append(f"{task}: {note}")
        for original, kept in zip(group, cut):
            cut_of[position[id(original)]] = kept
    return [cut_of[i] for i in range(len(runs))], coverages, notes
