"""The budget study as tables: what ``m1eval budget`` prints and writes, and what the notebook shows.

The verb and ``notebooks/scaling_under_a_clock.py`` make one analysis from one set of
settings, so both call the functions here rather than each assembling it (the notebook
used to rebuild the tables by hand, with columns of its own). The flow:

    inputs = load_inputs(run_paths, profile_paths)        # each run once, profiles, unique labels
    for task, runs, labels in inputs.groups():
        result = task_budget(runs, inputs.profiles, settings, budgets, labels=labels)
        curve_table(curve, used_ks(result, curve)) for each curve; verdict_table(result); verdict_lines(result)
    curve = length_curve(run, inputs.profiles, settings, lengths, label=label); length_table(curve)
    write_budget_tables(out, results, settings.as_dict(), length_frames)     # m1eval.analysis.budget.study

A ``TextTable`` holds cells as a reader sees them (percentages, '3.5 min'); the verb prints
it with rich, the notebook shows ``to_frame()``. The CSV and JSON files keep every number.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from m1eval.analysis.budget.clock import match_profile
from m1eval.analysis.budget.priced import BudgetCurve
from m1eval.analysis.budget.sequential import LengthCurve, sequential_curve
from m1eval.analysis.budget.study import TaskBudget, TaskCurves, analyse_task, leader_lines, run_labels, task_curves
from m1eval.analysis.budget.verdicts import DEFAULT_BUDGET_COUNT
from m1eval.analysis.intervals import ci_label
from m1eval.analysis.metrics import metric_info, powers_of_two
from m1eval.rundir.rundata import RunData, load_runs
from m1eval.throughput.profile import ThroughputProfile


@dataclass(frozen=True)
class BudgetSettings:
    """How curves are priced and compared (the options of ``m1eval budget``); ``budget.json`` records them."""

    metric: str = "maj"
    clock: str = "auto"  # auto (a matching profile, else the run's batches), profile or batches
    batch_size: float | None = None  # operating batch in the profile (default: its peak)
    tokens_per_sample: float | None = None  # price every sample at N tokens instead of the run's mean length
    length_aware: bool = False  # rescale profile throughput to the run's mean completion length
    sign_flips: int = 1000
    seed: int = 0
    level: float = 0.95  # confidence level of every interval

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class BudgetInputs:
    """The runs (each folder once), the throughput profiles and one unique label per run."""

    runs: list[RunData]
    profiles: list[ThroughputProfile]
    labels: list[str]  # m1eval.analysis.budget.study.run_labels: model, or model/run-id where a task has a model twice

    @property
    def warnings(self) -> list[str]:
        return [warning for run in self.runs for warning in run.warnings]

    def groups(self) -> list[tuple[str, list[RunData], list[str]]]:
        """(task, its runs, their labels), tasks in the order they first appear."""
        out: dict[str, tuple[list[RunData], list[str]]] = {}
        for run, label in zip(self.runs, self.labels):
            runs, labels = out.setdefault(run.task, ([], []))
            runs.append(run)
            labels.append(label)
        return [(task, runs, labels) for task, (runs, labels) in out.items()]


def load_inputs(runs: Sequence[str | os.PathLike[str]], profiles: Sequence[str | os.PathLike[str]]) -> BudgetInputs:
    """Run folders at or below ``runs`` and profile files; ``StoreError``/``ProfileError`` name a bad path."""
    data = load_runs(runs)
    return BudgetInputs(data, [ThroughputProfile.load(p) for p in profiles], run_labels(data))


def priced_curves(
    runs: Sequence[RunData],
    profiles: Sequence[ThroughputProfile],
    settings: BudgetSettings,
    *,
    labels: Sequence[str] | None = None,
    on_step: Callable[[], None] | None = None,
) -> TaskCurves:
    """One task's runs priced as ``settings`` say (``m1eval.analysis.budget.study.task_curves``); ``on_step`` after each run."""
    return task_curves(
        runs,
        profiles,
        metric=settings.metric,
        source=settings.clock,
        batch_size=settings.batch_size,
        length_aware=settings.length_aware,
        tokens_per_sample=settings.tokens_per_sample,
        sign_flips=settings.sign_flips,
        seed=settings.seed,
        level=settings.level,
        labels=labels,
        on_step=on_step,
    )


def task_steps(runs: Sequence[RunData], budgets: Sequence[float] | None) -> int:
    """How often ``task_budget`` calls ``on_step``: once per run priced, once per budget compared."""
    return len(runs) + (len(budgets or []) or DEFAULT_BUDGET_COUNT)


def task_budget(
    runs: Sequence[RunData],
    profiles: Sequence[ThroughputProfile],
    settings: BudgetSettings,
    budgets: Sequence[float] | None = None,
    *,
    labels: Sequence[str] | None = None,
    on_step: Callable[[], None] | None = None,
) -> TaskBudget:
    """One task's curves, verdicts at ``budgets`` (default: log-spaced) and leader changes."""
    prepared = priced_curves(runs, profiles, settings, labels=labels, on_step=on_step)
    return analyse_task(
        prepared, budgets, sign_flips=settings.sign_flips, seed=settings.seed, level=settings.level, on_step=on_step
    )


def length_curve(
    run: RunData,
    profiles: Sequence[ThroughputProfile],
    settings: BudgetSettings,
    lengths: Sequence[int] | None = None,
    *,
    label: str | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> LengthCurve:
    """Sequential scaling of one run (``m1eval.analysis.budget.sequential``), L priced by its model's profile if any."""
    return sequential_curve(
        run,
        lengths=lengths,
        profile=match_profile(run, profiles),
        sign_flips=settings.sign_flips,
        seed=settings.seed,
        level=settings.level,
        label=label,
        on_step=on_step,
    )


# ---------------------------------------------------------------------------- tables


@dataclass
class TextTable:
    """A table as text cells: the verb prints it (rich), a notebook shows ``to_frame()``."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""  # what short column names stand for, a line each (printed under the table)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)


def nice_seconds(seconds: float) -> str:
    """'42 s', '3.5 min', '2.1 h': budgets in units a reader can picture."""
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def used_ks(result: TaskBudget, curve: BudgetCurve) -> set[int]:
    """The k a verdict of ``result`` bought this curve's run (0, nothing affordable, left out)."""
    return {m.k for v in result.verdicts for m in v.models if m.label == curve.label and m.k}


def curve_table(curve: BudgetCurve, extra_ks: Collection[int] = (), *, level: float = 0.95) -> TextTable:
    """The run's curve at k = 1, 2, 4, ..., n and at ``extra_ks`` (the k verdicts used); every k is in the CSV/JSON."""
    metric = metric_info(curve.metric).label
    title = (
        f"{curve.task} · {curve.label}: {metric} against time ({curve.clock.source}, "
        f"{curve.clock.tokens_per_second:,.1f} tok/s, {curve.pricing}, {len(curve.values)} problems)"
    )
    shown = set(powers_of_two(curve.ks[-1])) | set(extra_ks)
    rows = [
        [str(k), nice_seconds(s), _pct(a), f"[{_pct(lo)}, {_pct(hi)}]"]
        for k, s, a, lo, hi in zip(curve.ks, curve.seconds, curve.accuracy, curve.low, curve.high)
        if k in shown
    ]
    return TextTable(title, ["k", "time for k samples of every problem", f"{metric} %", ci_label(level)], rows)


SHORT_LABEL = 14  # longer run labels are shown as letters in the verdict table (its caption names them)


def column_names(labels: Sequence[str]) -> dict[str, str]:
    """label -> the name a verdict table uses: the label itself when every label is short, else A, B, C, ..."""
    if all(len(label) <= SHORT_LABEL for label in labels):
        return {label: label for label in labels}
    letters = [chr(ord("A") + i) if i < 26 else f"R{i + 1}" for i in range(len(labels))]
    return dict(zip(labels, letters))


def verdict_table(result: TaskBudget, *, level: float = 0.95) -> TextTable:
    """The most accurate run at each budget: each run's k and accuracy, the leader, its lead and p.

    One line per budget at 100 columns for up to five runs: long run labels become letters
    (named in the caption), a tie reads ``A=B``, a run that cannot afford one sample ``-``.
    """
    metric = metric_info(result.curves[0].metric).label
    title = (
        f"{result.task}: most accurate run within each time budget ({metric}, {len(result.coverage.shared)} problems)"
    )
    names = column_names([curve.label for curve in result.curves])
    lettered = any(name != label for label, name in names.items())
    columns = [
        "budget",
        *(f"{names[curve.label]} k: %" for curve in result.curves),
        "leader",
        f"lead, pts [{ci_label(level)}]",
        "p",
    ]
    rows = []
    for v in result.verdicts:
        cells = [f"{m.k}: {_pct(m.accuracy)}" + ("*" if m.saturated else "") if m.k else "-" for m in v.models]
        leader = names[v.winner] if v.winner else "=".join(names[label] for label in v.leaders)  # A=B: a tie
        rows.append(
            [
                nice_seconds(v.budget_seconds),
                *cells,
                leader,
                f"{_pct(v.difference)} [{_pct(v.diff_low)}, {_pct(v.diff_high)}]",
                f"{v.p_value:.2g}",
            ]
        )
    caption = "\n".join(f"{name} = {label}" for label, name in names.items()) if lettered else ""
    return TextTable(title, columns, rows, caption)


def verdict_lines(result: TaskBudget) -> list[str]:
    """What follows the verdict table: the footnote for held accuracies, the notes, every change of leader."""
    lines = []
    if any(m.saturated for v in result.verdicts for m in v.models):
        lines.append("* the run has no more samples: accuracy held at its largest k")
    if any(not m.k for v in result.verdicts for m in v.models):
        lines.append("- not even one sample of every problem fits the budget: the run scores 0 there")
    if any(v.tie for v in result.verdicts):
        lines.append("A=B in the leader column: the runs tie (accuracies within 1e-9)")
    lines += [f"note: {note}" for note in result.notes]
    return lines + leader_lines(result, nice_seconds)


def length_table(curve: LengthCurve, *, level: float = 0.95) -> TextTable:
    """Accuracy with completions cut at each L, with the share left without an answer and the decode time."""
    rows = []
    for i, L in enumerate(curve.lengths):
        secs = nice_seconds(curve.seconds[i]) if curve.seconds is not None else "-"
        rows.append(
            [
                str(L),
                _pct(curve.accuracy[i]),
                f"[{_pct(curve.low[i])}, {_pct(curve.high[i])}]",
                _pct(curve.no_answer[i]),
                secs,
            ]
        )
    return TextTable(
        f"{curve.task} · {curve.label}: accuracy with completions cut at L tokens",
        ["L (tokens)", "pass@1 %", ci_label(level), "no answer %", "decode time"],
        rows,
    )
