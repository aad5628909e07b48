"""Accuracy under a clock: parallel scaling (k samples) and sequential scaling (length L).

The M1 paper's claim is that a faster architecture turns speed into accuracy. To test
it for any pair of models, every point of a pass@k / maj@k curve is given a price in
wall-clock seconds: producing k samples of every problem costs the tokens those samples
contain divided by the model's throughput (from a ``m1eval bench`` profile at a chosen
batch size, or from the run's own measured batches). A time budget then buys each model
the largest k it can afford, and the models are compared at those k with the paired
test of ``m1eval.bootstrap.paired_difference`` (a score interval and a sign-flip p-value).

Choices a verdict rests on (the README's budget section says the same):

- **Clock.** By default k samples cost k x (each problem's mean completion length, summed
  over problems) / tokens per second: the run's own lengths. ``tokens_per_sample=N`` prices
  every sample at N tokens instead, the M1 paper's pricing (8K tokens / peak throughput).
- **k.** A budget buys the largest k <= n that fits, any integer (the estimators are exact
  for every k), not only powers of two.
- **Ties.** Accuracies closer than ``TIE_TOLERANCE`` are equal: equal rationals summed in
  different orders differ by ~1e-16, and such a difference must not name a winner.
- **Problems.** Runs are ranked and compared on the same problems; ``m1eval.budget_tasks``
  cuts the runs of a task to the problems all of them scored and says how many.

Sequential scaling cuts each stored completion after its first L tokens (using
``Completion.prefix_chars``, recorded at generation time) and grades the cut text, so an
answer the cut removes counts as no answer; the price of length L comes from the
profile's generation-length sweep.

Estimators (pass@k, expected maj@k), intervals and the paired test come from
``m1eval.metrics`` / ``m1eval.bootstrap``, the curves from ``m1eval.curves``; this module
only prices and compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from m1eval.bootstrap import ProblemSet, paired_difference
from m1eval.curves import CurveError, metric_curve, pricing_text, problem_set, problem_tokens
from m1eval.metrics import k_grid, metric_info
from m1eval.models import canonical
from m1eval.profile import ProfileError, ThroughputProfile
from m1eval.rundata import RunData

TIE_TOLERANCE = 1e-9  # accuracies (shares of problems) closer than this are a tie
DEFAULT_BUDGET_COUNT = 6  # budgets compared at when none are given (log-spaced)


def same_accuracy(a: float, b: float) -> bool:
    """True when two accuracies differ by no more than float rounding (see ``TIE_TOLERANCE``)."""
    return abs(float(a) - float(b)) <= TIE_TOLERANCE


class BudgetError(CurveError):
    """The budget analysis cannot answer as asked; the message names the run or argument.

    A ``CurveError`` (a curve it needs cannot be computed) is its base: catch that to catch both.
    """


# ---------------------------------------------------------------------------- clocks


@dataclass(frozen=True)
class Clock:
    """Turns generated tokens into wall seconds for one model at one operating point."""

    tokens_per_second: float
    source: str
    batch_size: float | None = None
    warnings: tuple[str, ...] = ()  # e.g. a --batch-size the profile could not run

    def seconds(self, tokens: float) -> float:
        return float(tokens) / self.tokens_per_second


def clock_from_profile(profile: ThroughputProfile, batch_size: float | None = None, gen_len: float | None = None) -> Clock:
    """Throughput at ``batch_size`` (default: the profile's peak batch).

    With ``gen_len`` (the run's mean completion length) the rate is rescaled by the
    profile's generation-length sweep (``ThroughputProfile.length_factor``), so long
    reasoning chains are priced at long-context speed rather than at the bench's length.
    """
    batch = batch_size if batch_size is not None else profile.peak.batch_size
    tps = profile.throughput_at(batch)
    warnings = batch_size_warnings(profile, batch) if batch_size is not None else []
    source = f"profile {profile.name} ({profile.engine}) at batch {batch:g}"
    if warnings:
        source += " (clamped)"
    if gen_len is not None:
        tps *= profile.length_factor(gen_len)
        source += f", {gen_len:,.0f}-token generations"
    return Clock(tps, source, batch, tuple(warnings))


def batch_size_warnings(profile: ThroughputProfile, batch_size: float) -> list[str]:
    """Why the throughput at ``batch_size`` is not a measurement: out of memory, or outside the sweep.

    ``ThroughputProfile.throughput_at`` holds the nearest measured rate outside the measured
    range; a batch at or above one that ran out of memory could not have run at all.
    """
    points = profile.points("batch")
    if not points:
        return []
    largest, smallest = points[-1], points[0]
    oom = profile.oom_batch_size
    asked = f"--batch-size {batch_size:g}"
    if oom is not None and batch_size >= oom:
        message = (f"{asked} is at or above batch {oom}, which ran out of memory in profile {profile.name}; priced at "
                   f"the largest batch that ran, {largest.batch_size} ({largest.tokens_per_second:,.1f} tok/s)")
    elif batch_size > largest.batch_size:
        message = (f"{asked} is above the largest batch profile {profile.name} measured ({largest.batch_size}); "
                   f"priced at that batch's {largest.tokens_per_second:,.1f} tok/s, not extrapolated")
    elif batch_size < smallest.batch_size:
        message = (f"{asked} is below the smallest batch profile {profile.name} measured ({smallest.batch_size}); "
                   f"priced at that batch's {smallest.tokens_per_second:,.1f} tok/s")
    else:
        return []
    return [message]


def clock_from_batches(run: RunData) -> Clock:
    """The run's own measured rate: all generated tokens over all batch wall seconds."""
    batches = run.batches
    if batches is None or len(batches) == 0:
        raise BudgetError(f"{run.path}: no batches.jsonl timings; pass --profile for this model")
    wall = float(batches["wall_seconds"].sum())
    tokens = float(batches["generated_tokens"].sum())
    if wall <= 0 or tokens <= 0:
        raise BudgetError(f"{run.path}: batches.jsonl has no time or no tokens ({wall} s, {tokens:.0f} tokens)")
    mean_batch = float(batches["batch_size"].mean())
    return Clock(tokens / wall, f"measured batches of {run.path.name}", mean_batch)


# ---------------------------------------------------------------------------- parallel scaling


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
    problems: ProblemSet | None = None  # the samples, for paired bootstrap comparisons
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
    confidence: float = 0.95,
    resamples: int = 1000,
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
    curve = metric_curve(run, metric, ks=grid, confidence=confidence, resamples=resamples, seed=seed)
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

    Ranking runs on different problems compares different tests. ``m1eval.budget_tasks``
    cuts runs to their shared problems before pricing, and says how many.
    """
    first = curves[0].problem_ids
    for curve in curves[1:]:
        if set(curve.problem_ids) != set(first):
            raise BudgetError(
                f"{curves[0].label} was scored on {len(first)} problems and {curve.label} on {len(curve.problem_ids)} "
                f"different ones; compare runs on their shared problems (m1eval.budget_tasks.on_shared_problems)"
            )
    return first


def _model_at(curve: BudgetCurve, budget_seconds: float) -> ModelAtBudget:
    k = curve.affordable_k(budget_seconds)
    if k == 0:
        return ModelAtBudget(curve.label, 0, 0.0, 0.0, 0.0, False)
    i = curve.ks.index(k)
    return ModelAtBudget(curve.label, k, float(curve.accuracy[i]), float(curve.low[i]), float(curve.high[i]), curve.saturated(budget_seconds))


def compare_at_budget(
    curves: Sequence[BudgetCurve],
    budget_seconds: float,
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
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
        raise BudgetError(f"curve labels must be unique to tell the runs apart, got {labels} (m1eval.budget_tasks.run_labels)")
    shared = check_same_problems(curves)
    metric = curves[0].metric
    models = [_model_at(curve, budget_seconds) for curve in curves]
    notes = [
        f"{m.label}: one sample of every problem costs {float(c.seconds[0]):.3g} s; it scores 0 below that"
        for m, c in zip(models, curves)
        if m.k == 0
    ]
    notes += [f"{m.label}: the budget buys more than the run's n={m.k} samples; accuracy held at k={m.k}" for m in models if m.saturated]
    top = max(m.accuracy for m in models)
    leaders = [m.label for m in models if same_accuracy(m.accuracy, top)]  # in input order
    verdict = BudgetVerdict(budget_seconds, metric, models, None, 0.0, notes=notes, leaders=leaders, problems=len(shared))
    if len(models) < 2:
        verdict.winner = models[0].label
        return verdict
    # The pair to compare: the first two tied leaders, or the winner and the best of the rest.
    # (Stable sort, leaders first: runs within the tolerance are not ordered by rounding error.)
    ranked = sorted(zip(models, curves), key=lambda mc: (0.0, 0.0) if mc[0].label in leaders else (1.0, -mc[0].accuracy))
    (best, best_curve), (second, second_curve) = ranked[0], ranked[1]
    verdict.winner = None if verdict.tie else best.label
    verdict.runner_up = None if verdict.tie else second.label
    if best_curve.problems is None or second_curve.problems is None:
        verdict.difference = 0.0 if verdict.tie else best.accuracy - second.accuracy
        verdict.notes.append("curves carry no samples: no paired interval")
        return verdict
    paired = paired_difference(
        best_curve.problems.subset(shared), second_curve.problems.subset(shared), metric, best.k, second.k,
        level=confidence, resamples=resamples, seed=seed,
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


# ---------------------------------------------------------------------------- inputs


def match_profile(run: RunData, profiles: Sequence[ThroughputProfile]) -> ThroughputProfile | None:
    """The profile of the run's model: same display name, preset, hub id or folder."""
    model = run.manifest.get("model")
    names = {canonical(run.model)}
    if isinstance(model, dict):
        names |= {canonical(str(v)) for k, v in model.items() if k in ("name", "path", "preset") and v}
    for prof in profiles:
        if {canonical(prof.name), canonical(prof.model)} & names:
            return prof
    return None


def clock_for(
    run: RunData,
    profiles: Sequence[ThroughputProfile],
    *,
    batch_size: float | None = None,
    source: str = "auto",
    length_aware: bool = False,
    tokens_per_sample: float | None = None,
) -> Clock:
    """``source``: 'profile' (must match), 'batches' (the run's own timings) or 'auto' (profile if any).

    ``length_aware`` prices the run's mean completion length (or ``tokens_per_sample``,
    when every sample is priced at a fixed length) through the profile's length sweep
    (see ``clock_from_profile``).
    """
    if source not in ("auto", "profile", "batches"):
        raise BudgetError(f"--clock must be auto, profile or batches, got {source!r}")
    prof = match_profile(run, profiles) if source != "batches" else None
    if prof is not None:
        gen_len = None
        if length_aware:
            gen_len = float(tokens_per_sample) if tokens_per_sample is not None else float(run.frame["completion_tokens"].mean())
        try:
            return clock_from_profile(prof, batch_size, gen_len)
        except ProfileError as exc:
            raise BudgetError(f"{run.path}: {exc}") from None
    if source == "profile":
        have = ", ".join(p.name for p in profiles) or "none given"
        raise BudgetError(f"{run.path}: no --profile matches model {run.model!r} (profiles: {have})")
    clock = clock_from_batches(run)
    if batch_size is not None:
        note = (f"--batch-size {batch_size:g} does not apply to {run.model}: no profile prices it, so its own measured "
                f"batches do (mean batch {clock.batch_size:g})")
        clock = Clock(clock.tokens_per_second, clock.source, clock.batch_size, (note,))
    return clock
