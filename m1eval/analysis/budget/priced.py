"""Accuracy under a clock: parallel scaling (k samples) and sequential scaling (length L).

The M1 paper's claim is that a faster architecture turns speed into accuracy. To test
it for any pair of models, every point of a pass@k / maj@k curve is given a price in
wall-clock seconds: producing k samples of every problem costs the tokens those samples
contain divided by the model's throughput (from a ``m1eval bench`` profile at a chosen
batch size, or from the run's own measured batches). A time budget then buys each model
the largest k it can afford, and the models are compared at those k with the paired
test of ``m1eval.analysis.intervals.paired_difference`` (a score interval and a sign-flip p-value).

Choices a verdict rests on (the README's budget section says the same):

- **Clock.** By default k samples cost k x (each problem's mean completion length, summed
  over problems) / tokens per second: the run's own lengths. ``tokens_per_sample=N`` prices
  every sample at N tokens instead, the M1 paper's pricing (8K tokens / peak throughput).
- **k.** A budget buys the largest k <= n that fits, any integer (the estimators are exact
  for every k), not only powers of two.
- **Ties.** Accuracies closer than ``TIE_TOLERANCE`` are equal: equal rationals summed in
  different orders differ by ~1e-16, and such a difference must not name a winner.
- **Problems.** Runs are ranked and compared on the same problems; ``m1eval.analysis.budget.study``
  cuts the runs of a task to the problems all of them scored and says how many.

Sequential scaling cuts each stored completion after its first L tokens (using
``Completion.prefix_chars``, recorded at generation time) and grades the cut text, so an
answer the cut removes counts as no answer; the price of length L comes from the
profile's generation-length sweep.

Estimators (pass@k, expected maj@k), intervals and the paired test come from
``m1eval.analysis.metrics`` / ``m1eval.analysis.intervals``, the curves from ``m1eval.analysis.curves``; this module
only prices and compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from m1eval.analysis.budget.clock import Clock
from m1eval.analysis.curves import metric_curve, pricing_text, problem_set, problem_tokens
from m1eval.analysis.intervals import ProblemSet
from m1eval.analysis.metrics import k_grid, metric_info
from m1eval.rundir.rundata import RunData


@dataclass
class BudgetCurve:
    """Accuracy of one run against the seconds needed for k samples of every problem."""

    label: str
    task: str
    metric: str
    clock: Clock
    ks: list[int]
    seconds: np.ndarray
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: pd.DataFrame  # rows: problems, columns: k -> per-problem expected metric
    tokens_per_sample: float = 0.0  # mean over problems of the tokens one sample is priced at
    problems: ProblemSet | None = None  # the samples, for the paired comparisons
    model: str = ""  # the model name (colours); ``label`` is unique among the compared runs
    run: str = ""  # the run folder
    fixed_tokens: float | None = None  # --tokens-per-sample, when every sample is priced at it

    @property
    def pricing(self) -> str:
        return pricing_text(self.fixed_tokens, self.tokens_per_sample)

    @property
    def problem_ids(self) -> list[str]:
        return [str(pid) for pid in self.values.index]

    def affordable_k(self, budget_seconds: float) -> int:
        """Largest k of the grid whose price fits the budget; 0 if not even one sample fits."""
        fits = [k for k, s in zip(self.ks, self.seconds) if s <= budget_seconds * (1 + 1e-12)]
        return max(fits) if fits else 0

    def accuracy_at(self, budget_seconds: float) -> float:
        k = self.affordable_k(budget_seconds)
        return 0.0 if k == 0 else float(self.accuracy[self.ks.index(k)])

    def saturated(self, budget_seconds: float) -> bool:
        """True when the budget buys more samples than the run has (the curve is flat there)."""
        return budget_seconds > self.seconds[-1] * (1 + 1e-12)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "model": self.label,
                "task": self.task,
                "metric": metric_info(self.metric).label,
                "k": self.ks,
                "seconds": self.seconds,
                "accuracy": self.accuracy,
                "ci_low": self.low,
                "ci_high": self.high,
                "clock": self.clock.source,
                "tokens_per_second": self.clock.tokens_per_second,
                "tokens_per_sample": self.tokens_per_sample,
                "pricing": self.pricing,
                "problems": len(self.values),
                "run": self.run,
            }
        )


def parallel_curve(
    run: RunData,
    clock: Clock,
    metric: str = "maj",
    *,
    ks: Sequence[int] | None = None,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
    label: str | None = None,
    tokens_per_sample: float | None = None,
) -> BudgetCurve:
    """Price each k: k x (sum over problems of tokens per sample) / tokens per second.

    Every k from 1 to n is priced (a budget buys the largest k that fits, whatever it
    is). Tokens per sample are each problem's mean completion length, or
    ``tokens_per_sample`` for every sample (the paper's fixed-length pricing).
    """
    grid = list(ks) if ks is not None else k_grid(run.n, every_k=True)
    per_problem_tokens = problem_tokens(run, tokens_per_sample)
    tokens_one_round = float(per_problem_tokens.sum())
    curve = metric_curve(run, metric, ks=grid, level=level, sign_flips=sign_flips, seed=seed)
    values, acc, low, high = curve.values, curve.accuracy, curve.low, curve.high
    return BudgetCurve(
        label=label or run.model,
        task=run.task,
        metric=metric,
        clock=clock,
        ks=grid,
        seconds=np.array([clock.seconds(k * tokens_one_round) for k in grid]),
        accuracy=np.array(acc),
        low=np.array(low),
        high=np.array(high),
        values=values,
        tokens_per_sample=tokens_one_round / max(len(per_problem_tokens), 1),
        problems=problem_set(run),
        model=run.model,
        run=str(run.path),
        fixed_tokens=float(tokens_per_sample) if tokens_per_sample is not None else None,
    )
