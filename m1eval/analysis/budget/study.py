"""The budget analysis of whole tasks: unique run labels, shared problems, verdicts, tables.

``m1eval.analysis.budget.priced`` prices one run and compares curves; real ``results/`` folders add three
things this module handles before any verdict is made:

- **Two runs of one model.** A run is labelled by its model name, or ``model/run-id`` when
  another run of the same task has the same model, so tables, CSV columns, figure legends
  and leader changes never merge two runs.
- **Runs scored on different problems.** Every run of a task is cut to the problems all of
  them scored (``on_shared_problems``) before it is priced, ranked or compared, and the
  analysis says how many problems that leaves and how many each run had.
- **Any number of runs.** Every change of leader among all runs is reported.

``TaskBudget`` holds one task's curves, verdicts and leader changes, with the notes that
explain them, and turns them into rows (CSV) and plain dicts (JSON); ``leader_lines`` says
every change of leader in words and ``write_budget_tables`` writes the files. The CLI
(``m1eval budget --out``) and the analysis notebook both go through these, so their
tables, CSV and JSON have one schema.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from m1eval.analysis import problemsets
from m1eval.analysis.budget.clock import BudgetError, clock_for
from m1eval.analysis.budget.priced import BudgetCurve, parallel_curve
from m1eval.analysis.budget.verdicts import (
    BudgetVerdict,
    LeaderChange,
    compare_at_budget,
    default_budgets,
    leader_segments,
)
from m1eval.analysis.comparable import Difference, clock_difference, run_differences
from m1eval.analysis.curves import CurveError
from m1eval.analysis.metrics import metric_info
from m1eval.analysis.problemsets import ProblemCoverage
from m1eval.rundir.rundata import RunData
from m1eval.throughput.profile import ThroughputProfile


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """One unique display label per run: the model name, ``model/run-id`` where a task has it twice.

    The same run folder given twice (or copies of one run) would still collide; those get
    ``#1``, ``#2`` in input order. A run whose problems.jsonl was edited after generation
    (``RunData.problems_check``) carries ``[MODIFIED: ids]``.
    """
    per_task = Counter((run.task, run.model) for run in runs)
    labels = [run.model if per_task[(run.task, run.model)] == 1 else run.label for run in runs]
    repeats = Counter((run.task, label) for run, label in zip(runs, labels))
    seen: Counter = Counter()
    out = []
    for run, label in zip(runs, labels):
        key = (run.task, label)
        if repeats[key] > 1:
            seen[key] += 1
            label = f"{label}#{seen[key]}"
        if run.problems_check.is_modified:  # graded against edited problems: said in every legend and table
            label = f"{label} [MODIFIED: {run.problems_check.ids_text(3)}]"
        out.append(label)
    return out


def on_shared_problems(runs: Sequence[RunData], labels: Sequence[str]) -> tuple[list[RunData], ProblemCoverage]:
    """``m1eval.analysis.problemsets.on_shared_problems``, its refusal a ``BudgetError``."""
    try:
        return problemsets.on_shared_problems(runs, labels)
    except CurveError as exc:
        raise BudgetError(str(exc)) from None


@dataclass
class TaskCurves:
    """Priced curves of every run of one task, on their shared problems."""

    task: str
    curves: list[BudgetCurve]
    coverage: ProblemCoverage
    warnings: list[str] = field(default_factory=list)  # clocks that are not what was asked for
    differences: list[Difference] = field(default_factory=list)  # settings and clock hardware the runs differ in

    @property
    def notes(self) -> list[str]:
        note = self.coverage.note()
        return [note] if note else []


def task_curves(
    runs: Sequence[RunData],
    profiles: Sequence[ThroughputProfile],
    *,
    metric: str = "maj",
    source: str = "auto",
    batch_size: float | None = None,
    length_aware: bool = False,
    tokens_per_sample: float | None = None,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    on_step: Callable[[], None] | None = None,
) -> TaskCurves:
    """Label, cut to shared problems, clock and price every run of one task; ``on_step`` after each run."""
    if len({run.task for run in runs}) > 1:
        raise BudgetError(f"task_curves takes the runs of one task, got {sorted({run.task for run in runs})}")
    labels = list(labels) if labels is not None else run_labels(runs)
    cut, coverage = on_shared_problems(runs, labels)
    curves, warnings = [], []
    for run, label in zip(cut, labels):
        clock = clock_for(
            run,
            profiles,
            batch_size=batch_size,
            source=source,
            length_aware=length_aware,
            tokens_per_sample=tokens_per_sample,
        )
        warnings += [f"{label}: {w}" for w in clock.warnings]
        curves.append(
            parallel_curve(
                run,
                clock,
                metric,
                level=level,
                sign_flips=sign_flips,
                seed=seed,
                label=label,
                tokens_per_sample=tokens_per_sample,
            )
        )
        if on_step is not None:
            on_step()
    differences = run_differences(runs, labels, skip=("hardware",))  # the clocks' hardware is what counts here
    clocks = clock_difference({curve.label: curve.clock.hardware for curve in curves})
    return TaskCurves(runs[0].task, curves, coverage, warnings, differences + ([clocks] if clocks else []))


def by_task(runs: Sequence[RunData]) -> dict[str, list[RunData]]:
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(run.task, []).append(run)
    return groups


@dataclass
class TaskBudget:
    """One task's verdict at each budget and every change of leader."""

    task: str
    curves: list[BudgetCurve]
    coverage: ProblemCoverage
    verdicts: list[BudgetVerdict]
    changes: list[LeaderChange]  # the first entry is who leads at the cheapest price
    warnings: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)  # m1eval.analysis.comparable

    @property
    def notes(self) -> list[str]:
        """The coverage note, then every verdict note once, in order."""
        notes = [n for n in [self.coverage.note()] if n]
        for verdict in self.verdicts:
            notes += [n for n in verdict.notes if n not in notes]
        return notes

    def verdict_rows(self) -> list[dict[str, Any]]:
        """One row per budget; per-run columns are ``k[label]`` and ``acc[label]`` (labels are unique)."""
        rows = []
        for v in self.verdicts:
            rows.append(
                {
                    "task": self.task,
                    "budget_seconds": v.budget_seconds,
                    "metric": metric_info(v.metric).label,
                    "winner": v.winner,
                    "tie": v.tie,
                    "leaders": " | ".join(v.leaders),
                    "runner_up": v.runner_up,
                    "difference": v.difference,
                    "ci_low": v.diff_low,
                    "ci_high": v.diff_high,
                    "p_value": v.p_value,
                    "problems": v.problems,
                    **{f"k[{m.label}]": m.k for m in v.models},
                    **{f"acc[{m.label}]": m.accuracy for m in v.models},
                    "notes": "; ".join(v.notes),
                    "differences": "; ".join(d.text() for d in self.differences),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Everything the tables show, as plain JSON-ready values (NaN becomes None)."""
        return json_ready(
            {
                "task": self.task,
                "problems": len(self.coverage.shared),
                "problems_scored": self.coverage.scored,
                "notes": self.notes,
                "warnings": self.warnings,
                "differences": [d.to_dict() for d in self.differences],
                "curves": [
                    {
                        "label": c.label,
                        "model": c.model,
                        "run": c.run,
                        "metric": metric_info(c.metric).label,
                        "clock": c.clock.source,
                        "tokens_per_second": c.clock.tokens_per_second,
                        "batch_size": c.clock.batch_size,
                        "tokens_per_sample": c.tokens_per_sample,
                        "pricing": c.pricing,
                        "fixed_tokens_per_sample": c.fixed_tokens,
                        "k": list(c.ks),
                        "seconds": list(c.seconds),
                        "accuracy": list(c.accuracy),
                        "ci_low": list(c.low),
                        "ci_high": list(c.high),
                    }
                    for c in self.curves
                ],
                "verdicts": [
                    {
                        "budget_seconds": v.budget_seconds,
                        "winner": v.winner,
                        "tie": v.tie,
                        "leaders": v.leaders,
                        "runner_up": v.runner_up,
                        "difference": v.difference,
                        "ci_low": v.diff_low,
                        "ci_high": v.diff_high,
                        "p_value": v.p_value,
                        "problems": v.problems,
                        "notes": v.notes,
                        "models": [dataclasses.asdict(m) for m in v.models],
                    }
                    for v in self.verdicts
                ],
                "leader_changes": [{"from_seconds": c.seconds, "leaders": list(c.leaders)} for c in self.changes],
            }
        )


def analyse_task(
    prepared: TaskCurves,
    budgets: Sequence[float] | None = None,
    *,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
) -> TaskBudget:
    """Verdicts at each budget (default: six log-spaced) and the leader changes, for two or more runs.

    ``on_step`` is called after each verdict (for a progress bar).
    """
    curves = prepared.curves
    if len(curves) < 2:
        return TaskBudget(
            prepared.task, curves, prepared.coverage, [], [], list(prepared.warnings), list(prepared.differences)
        )
    bad = [b for b in budgets or [] if not (b > 0 and math.isfinite(b))]
    if bad:
        raise BudgetError(f"a budget must be a positive number of seconds, got {bad[0]:g}")
    verdicts = []
    for seconds in budgets or default_budgets(curves):
        verdicts.append(compare_at_budget(curves, seconds, level=level, sign_flips=sign_flips, seed=seed))
        if on_step is not None:
            on_step()
    return TaskBudget(
        prepared.task,
        curves,
        prepared.coverage,
        verdicts,
        leader_segments(curves),
        list(prepared.warnings),
        list(prepared.differences),
    )


def leader_lines(result: TaskBudget, format_seconds: Callable[[float], str] = "{:.3g} s".format) -> list[str]:
    """Who leads at the cheapest price and every later change of leader, in words (ties named as ties)."""
    if not result.changes:
        return []
    first, *later = result.changes
    names = ", ".join(c.label for c in result.curves)
    if not later:
        return [f"no crossover among {names}: {first.describe()} at every budget"]
    lines = [f"leader among {names} from the cheapest price ({format_seconds(first.seconds)}): {first.describe()}"]
    lines += [f"crossover: from {format_seconds(change.seconds)} on, {change.describe()}" for change in later]
    return lines


def budget_report(
    results: Sequence[TaskBudget], settings: dict[str, Any], length_frames: Sequence[pd.DataFrame] = ()
) -> dict[str, Any]:
    """The content of ``budget.json``: the settings, every task's analysis, the length curves."""
    return json_ready(
        {
            "settings": dict(settings),
            "tasks": [result.to_dict() for result in results],
            "length_curves": [frame.to_dict(orient="list") for frame in length_frames],
        }
    )


def write_budget_tables(
    out: Path, results: Sequence[TaskBudget], settings: dict[str, Any], length_frames: Sequence[pd.DataFrame] = ()
) -> list[Path]:
    """Write budget_curves.csv, budget_verdicts.csv, length_curves.csv (those with rows) and budget.json.

    ``settings`` records how the curves were priced (metric, clock, batch size, tokens per
    sample, ...) so that the JSON says which clock a figure used. Returns the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    curve_frames = [curve.to_frame() for result in results for curve in result.curves]
    verdict_rows = [row for result in results for row in result.verdict_rows()]
    tables = {
        "budget_curves": pd.concat(curve_frames) if curve_frames else None,
        "budget_verdicts": pd.DataFrame(verdict_rows) if verdict_rows else None,
        "length_curves": pd.concat(length_frames) if length_frames else None,
    }
    for name, frame in tables.items():
        if frame is not None:
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
    report = budget_report(results, settings, length_frames)
    (out / "budget.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    written.append(out / "budget.json")
    return written


def json_ready(value: Any) -> Any:
    """numpy scalars to Python, NaN/inf to None, recursively: strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
