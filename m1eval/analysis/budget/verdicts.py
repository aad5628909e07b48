"""Verdicts at a budget: which model is ahead at each time budget, by how much, and where the lead changes.

Models are compared at the largest k each can afford within the budget, on the same
problems, with the paired test of ``m1eval.analysis.intervals.paired_difference``.
Accuracies closer than ``TIE_TOLERANCE`` are a tie: equal rationals summed in different
orders differ by ~1e-16, and such a difference must not name a winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from m1eval.analysis.budget.clock import BudgetError
from m1eval.analysis.budget.priced import BudgetCurve
from m1eval.analysis.intervals import paired_difference

TIE_TOLERANCE = 1e-9  # accuracies (shares of problems) closer than this are a tie
DEFAULT_BUDGET_COUNT = 6  # budgets compared at when none are given (log-spaced)


def same_accuracy(a: float, b: float) -> bool:
    """True when two accuracies differ by no more than float rounding (see ``TIE_TOLERANCE``)."""
    return abs(float(a) - float(b)) <= TIE_TOLERANCE


@dataclass
class ModelAtBudget:
    label: str
    k: int
    accuracy: float
    low: float
    high: float
    saturated: bool


@dataclass
class BudgetVerdict:
    """Which model is more accurate within ``budget_seconds``, and by how much.

    ``leaders`` holds every model tied for the top (one label when there is a winner);
    the lead and its interval compare the winner with the runner-up, or, in a tie, the
    first two tied models (the lead is then 0 and the interval says how close).
    """

    budget_seconds: float
    metric: str
    models: list[ModelAtBudget]
    winner: str | None
    difference: float  # winner minus runner-up (0 when tied)
    diff_low: float = float("nan")
    diff_high: float = float("nan")
    p_value: float = float("nan")
    notes: list[str] = field(default_factory=list)
    leaders: list[str] = field(default_factory=list)
    runner_up: str | None = None
    problems: int = 0  # problems every model was scored on here

    @property
    def tie(self) -> bool:
        return len(self.leaders) > 1


def check_same_problems(curves: Sequence[BudgetCurve]) -> list[str]:
    """The problem ids all curves share, in the first curve's order; refuse curves on different problems.

    Ranking runs on different problems compares different tests. ``m1eval.analysis.budget.study``
    cuts runs to their shared problems before pricing, and says how many.
    """
    first = curves[0].problem_ids
    for curve in curves[1:]:
        if set(curve.problem_ids) != set(first):
            raise BudgetError(
                f"{curves[0].label} was scored on {len(first)} problems and {curve.label} on {len(curve.problem_ids)} "
                f"different ones; compare runs on their shared problems (m1eval.analysis.budget.study.on_shared_problems)"
            )
    return first


def _model_at(curve: BudgetCurve, budget_seconds: float) -> ModelAtBudget:
    k = curve.affordable_k(budget_seconds)
    if k == 0:
        return ModelAtBudget(curve.label, 0, 0.0, 0.0, 0.0, False)
    i = curve.ks.index(k)
    return ModelAtBudget(
        curve.label,
        k,
        float(curve.accuracy[i]),
        float(curve.low[i]),
        float(curve.high[i]),
        curve.saturated(budget_seconds),
    )


def compare_at_budget(
    curves: Sequence[BudgetCurve],
    budget_seconds: float,
    *,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
) -> BudgetVerdict:
    """Each model at the largest k it can afford; the top two compared on the same problems.

    Models within ``TIE_TOLERANCE`` of the best accuracy all lead (a tie, no winner).
    """
    if len(curves) < 1:
        raise BudgetError("compare_at_budget needs at least one curve")
    if not budget_seconds > 0:
        raise BudgetError(f"a time budget must be positive, got {budget_seconds:g} s")
    labels = [c.label for c in curves]
    if len(set(labels)) < len(labels):
        raise BudgetError(
            f"curve labels must be unique to tell the runs apart, got {labels} (m1eval.analysis.budget.study.run_labels)"
        )
    shared = check_same_problems(curves)
    metric = curves[0].metric
    models = [_model_at(curve, budget_seconds) for curve in curves]
    notes = [
        f"{m.label}: one sample of every problem costs {float(c.seconds[0]):.3g} s; it scores 0 below that"
        for m, c in zip(models, curves)
        if m.k == 0
    ]
    notes += [
        f"{m.label}: the budget buys more than the run's n={m.k} samples; accuracy held at k={m.k}"
        for m in models
        if m.saturated
    ]
    top = max(m.accuracy for m in models)
    leaders = [m.label for m in models if same_accuracy(m.accuracy, top)]  # in input order
    verdict = BudgetVerdict(
        budget_seconds, metric, models, None, 0.0, notes=notes, leaders=leaders, problems=len(shared)
    )
    if len(models) < 2:
        verdict.winner = models[0].label
        return verdict
    # The pair to compare: the first two tied leaders, or the winner and the best of the rest.
    # (Stable sort, leaders first: runs within the tolerance are not ordered by rounding error.)
    ranked = sorted(
        zip(models, curves), key=lambda mc: (0.0, 0.0) if mc[0].label in leaders else (1.0, -mc[0].accuracy)
    )
    (best, best_curve), (second, second_curve) = ranked[0], ranked[1]
    verdict.winner = None if verdict.tie else best.label
    verdict.runner_up = None if verdict.tie else second.label
    if best_curve.problems is None or second_curve.problems is None:
        verdict.difference = 0.0 if verdict.tie else best.accuracy - second.accuracy
        verdict.notes.append("curves carry no samples: no paired interval")
        return verdict
    paired = paired_difference(
        best_curve.problems.subset(shared),
        second_curve.problems.subset(shared),
        metric,
        best.k,
        second.k,
        level=level,
        sign_flips=sign_flips,
        seed=seed,
    )
    verdict.difference = 0.0 if verdict.tie else paired.diff
    verdict.diff_low, verdict.diff_high, verdict.p_value = paired.low, paired.high, paired.p_value
    return verdict


@dataclass(frozen=True)
class LeaderChange:
    """From ``seconds`` on, ``leaders`` are the most accurate (several when they tie)."""

    seconds: float
    leaders: tuple[str, ...]

    @property
    def leader(self) -> str | None:
        return self.leaders[0] if len(self.leaders) == 1 else None

    def describe(self) -> str:
        if self.leader is not None:
            return f"{self.leader} is more accurate"
        return f"{', '.join(self.leaders[:-1])} and {self.leaders[-1]} tie"


def leader_segments(curves: Sequence[BudgetCurve]) -> list[LeaderChange]:
    """Who leads from each budget on, starting at the cheapest price, one entry per change.

    Accuracies are step functions of the budget (a model holds its accuracy until it can
    afford its next k), so the leader can only change at one of the curves' prices. A model
    that cannot yet afford one sample scores 0; models within ``TIE_TOLERANCE`` of the best
    share the lead, and a tie is a state of its own (a change into and out of it counts).
    """
    if not curves:
        return []
    labels = [c.label for c in curves]
    if len(set(labels)) < len(labels):
        raise BudgetError(f"curve labels must be unique to tell the runs apart, got {labels}")
    check_same_problems(curves)
    prices = sorted({float(s) for c in curves for s in c.seconds})
    out: list[LeaderChange] = []
    for price in prices:
        accuracy = [c.accuracy_at(price) for c in curves]
        top = max(accuracy)
        leaders = tuple(label for label, a in zip(labels, accuracy) if same_accuracy(a, top))
        if not out or out[-1].leaders != leaders:
            out.append(LeaderChange(price, leaders))
    return out


def crossovers(*curves: BudgetCurve) -> list[tuple[float, str | None]]:
    """Budgets at which the lead changes among any number of curves: (seconds, new leader or None for a tie)."""
    return [(change.seconds, change.leader) for change in leader_segments(curves)[1:]]


def default_budgets(curves: Sequence[BudgetCurve], count: int = DEFAULT_BUDGET_COUNT) -> list[float]:
    """Log-spaced budgets between the cheapest first sample and the dearest full run."""
    lo = min(float(c.seconds[0]) for c in curves)
    hi = max(float(c.seconds[-1]) for c in curves)
    if hi <= lo:
        return [lo]
    return [float(x) for x in np.geomspace(lo, hi, count)]
