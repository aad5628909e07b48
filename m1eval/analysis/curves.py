"""Curves of one run: a metric's per-problem values at each k, their mean and its interval.

The analysis wing reads one way: statistics (``m1eval.analysis.metrics`` estimators,
``m1eval.analysis.intervals`` intervals) -> curves (this module) -> budget pricing, reports and
figures. A curve is the common currency of the later stages: ``m1eval.analysis.budget.priced`` prices each
k of it in seconds, ``m1eval.figures.plots`` draws it, the notebook tabulates it. Keeping it below
them means a figure of pass@k needs no clock, and a budget needs no figure code.

Also here: what one more sample of each problem costs in tokens (``problem_tokens``), the
quantity a clock turns into seconds, because it is a per-problem fact of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from m1eval.analysis.intervals import ProblemSet, interval_curve, per_problem
from m1eval.analysis.metrics import k_grid, metric_names
from m1eval.rundir.rundata import RunData

# The metrics drawn against k and priced against a clock: those of the registry marked ``curves``.
METRICS = tuple(metric_names(curves=True))


class CurveError(ValueError):
    """A curve cannot be computed as asked (no samples, k beyond n, a bad price); the message names the run."""


def problem_set(run: RunData) -> ProblemSet:
    return ProblemSet.from_frame(run.frame)


def problem_values(run: RunData, metric: str, ks: Sequence[int]) -> pd.DataFrame:
    """Per-problem expected metric (rows: problem ids, columns: k), from m1eval.analysis.intervals.per_problem.

    Each problem uses all of its graded samples (its own n), as the estimators allow.
    """
    return _problem_values(run, problem_set(run), metric, list(ks))[1]


def _problem_values(
    run: RunData, problems: ProblemSet, metric: str, ks: list[int], seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame]:
    """``per_problem`` of ``problems`` (the run's): the matrix as computed, and as the frame ``problem_values`` returns."""
    if metric not in METRICS:
        raise CurveError(f"metric must be one of {METRICS}, got {metric!r}")
    _check_k(run, ks)
    values = per_problem(problems, ks, metric, seed=seed)
    return values, pd.DataFrame(values, index=problems.ids, columns=ks)


def _check_k(run: RunData, ks: Sequence[int]) -> None:
    if run.n < 1:
        raise CurveError(f"{run.path}: no graded samples")
    bad = [k for k in ks if k < 1 or k > run.n]
    if bad or not ks:
        raise CurveError(f"{run.path}: k must be in 1..{run.n} (samples per problem), got {list(ks)}")


def problem_tokens(run: RunData, fixed: float | None = None) -> pd.Series:
    """Tokens one more sample of each problem costs: its mean completion length, or ``fixed`` for all."""
    mean = run.frame.groupby("problem_id", sort=False)["completion_tokens"].mean().astype(float)
    if fixed is None:
        return mean
    if not fixed > 0:
        raise CurveError(f"tokens_per_sample must be positive, got {fixed:g}")
    return pd.Series(float(fixed), index=mean.index)


def pricing_text(fixed: float | None, mean: float) -> str:
    """How a curve priced one sample, for titles, legends and tables."""
    return f"fixed {fixed:,.0f} tok/sample" if fixed is not None else f"mean {mean:,.0f} tok/sample"


@dataclass
class MetricCurve:
    """pass@k or maj@k of one run for each k, with a score interval over problems."""

    label: str
    task: str
    metric: str
    ks: list[int]
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: pd.DataFrame  # rows: problems, columns: k
    model: str = ""  # the run's model (its colour in figures); ``label`` is unique among compared runs

    @property
    def problems(self) -> int:
        return len(self.values)


def metric_curve(
    run: RunData,
    metric: str,
    *,
    ks: Sequence[int] | None = None,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
    label: str | None = None,
) -> MetricCurve:
    """Per-problem expected metric for each k, averaged over problems, with its interval (``interval_curve``)."""
    grid = list(ks) if ks is not None else k_grid(run.n)
    problems = problem_set(run)
    raw, values = _problem_values(run, problems, metric, grid, seed)
    ci = interval_curve(
        problems,
        grid,
        metric,
        sign_flips=sign_flips,
        seed=seed,
        level=level,
        point=values.to_numpy().mean(axis=0),
        values=raw,  # computed once for the point and the interval
    )
    return MetricCurve(label or run.model, run.task, metric, grid, ci.point, ci.low, ci.high, values, run.model)
