"""Accuracy under a clock: parallel scaling (k samples) and sequential scaling (length L).

The M1 paper's claim is that a faster architecture turns speed into accuracy. To test
it for any pair of models, every point of a pass@k / maj@k curve is given a price in
wall-clock seconds: producing k samples of every problem costs the tokens those samples
contain divided by the model's throughput (from a ``m1eval bench`` profile at a chosen
batch size, or from the run's own measured batches). A time budget then buys each model
the largest k it can afford, and the models are compared at that k with a paired
bootstrap over problems.

Sequential scaling cuts each stored completion after its first L tokens (using
``Completion.prefix_chars``, recorded at generation time) and grades the cut text, so an
answer the cut removes counts as no answer; the price of length L comes from the
profile's generation-length sweep.

Estimators (pass@k, expected maj@k) and bootstrap intervals come from
``m1eval.metrics`` / ``m1eval.bootstrap``; this module only prices and compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from m1eval.bootstrap import ProblemSet, _paired_replicates, bootstrap_curve, per_problem
from m1eval.metrics import k_grid
from m1eval.profile import ProfileError, ThroughputProfile
from m1eval.rundata import RunData

METRICS = ("maj", "pass")


class BudgetError(ValueError):
    """The budget analysis cannot answer as asked; the message names the run or argument."""


# ---------------------------------------------------------------------------- clocks


@dataclass(frozen=True)
class Clock:
    """Turns generated tokens into wall seconds for one model at one operating point."""

    tokens_per_second: float
    source: str
    batch_size: float | None = None

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
    source = f"profile {profile.name} ({profile.engine}) at batch {batch:g}"
    if gen_len is not None:
        tps *= profile.length_factor(gen_len)
        source += f", {gen_len:,.0f}-token generations"
    return Clock(tps, source, batch)


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


# ---------------------------------------------------------------------------- per-problem values


def problem_set(run: RunData) -> ProblemSet:
    return ProblemSet.from_frame(run.frame)


def problem_values(run: RunData, metric: str, ks: Sequence[int]) -> pd.DataFrame:
    """Per-problem expected metric (rows: problem ids, columns: k), from m1eval.bootstrap.per_problem.

    Each problem uses all of its graded samples (its own n), as the estimators allow.
    """
    if metric not in METRICS:
        raise BudgetError(f"metric must be one of {METRICS}, got {metric!r}")
    problems = problem_set(run)
    ks = list(ks)
    _check_k(run, ks)
    return pd.DataFrame(per_problem(problems, ks, metric), index=problems.ids, columns=ks)


def _check_k(run: RunData, ks: Sequence[int]) -> None:
    if run.n < 1:
        raise BudgetError(f"{run.path}: no graded samples")
    bad = [k for k in ks if k < 1 or k > run.n]
    if bad or not ks:
        raise BudgetError(f"{run.path}: k must be in 1..{run.n} (samples per problem), got {list(ks)}")


def tokens_per_sample(run: RunData) -> pd.Series:
    """Mean completion tokens per problem: the expected cost of one more sample of it."""
    return run.frame.groupby("problem_id", sort=False)["completion_tokens"].mean().astype(float)


@dataclass
class MetricCurve:
    """pass@k or maj@k of one run for each k, with a bootstrap interval over problems."""

    label: str
    task: str
    metric: str
    ks: list[int]
    accuracy: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: pd.DataFrame  # rows: problems, columns: k


def metric_curve(
    run: RunData,
    metric: str,
    *,
    ks: Sequence[int] | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    label: str | None = None,
) -> MetricCurve:
    """Per-problem expected metric for each k, averaged over problems, with its two-level bootstrap interval."""
    grid = list(ks) if ks is not None else k_grid(run.n)
    values = problem_values(run, metric, grid)
    ci = bootstrap_curve(
        problem_set(run), grid, metric, resamples=resamples, seed=seed, level=confidence, point=values.to_numpy().mean(axis=0)
    )
    return MetricCurve(label or run.model, run.task, metric, grid, ci.point, ci.low, ci.high, values)


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
    tokens_per_sample: float = 0.0
    problems: ProblemSet | None = None  # the samples, for paired bootstrap comparisons

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
                "metric": f"{self.metric}@k",
                "k": self.ks,
                "seconds": self.seconds,
                "accuracy": self.accuracy,
                "ci_low": self.low,
                "ci_high": self.high,
                "clock": self.clock.source,
                "tokens_per_second": self.clock.tokens_per_second,
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
) -> BudgetCurve:
    """Price each k: k x (sum over problems of mean tokens per sample) / tokens per second."""
    grid = list(ks) if ks is not None else k_grid(run.n)
    per_problem_tokens = tokens_per_sample(run)
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
    """Which model is more accurate within ``budget_seconds``, and by how much."""

    budget_seconds: float
    metric: str
    models: list[ModelAtBudget]
    winner: str | None
    difference: float  # winner minus runner-up (0 when tied)
    diff_low: float = float("nan")
    diff_high: float = float("nan")
    p_value: float = float("nan")
    notes: list[str] = field(default_factory=list)


def compare_at_budget(
    curves: Sequence[BudgetCurve],
    budget_seconds: float,
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> BudgetVerdict:
    """Each model at the largest k it can afford; the top two compared on shared problems."""
    if len(curves) < 1:
        raise BudgetError("compare_at_budget needs at least one curve")
    metric = curves[0].metric
    models = []
    for curve in curves:
        k = curve.affordable_k(budget_seconds)
        if k == 0:
            models.append(ModelAtBudget(curve.label, 0, 0.0, 0.0, 0.0, False))
        else:
            i = curve.ks.index(k)
            models.append(
                ModelAtBudget(curve.label, k, float(curve.accuracy[i]), float(curve.low[i]), float(curve.high[i]), curve.saturated(budget_seconds))
            )
    notes = [
        f"{m.label}: not one sample of every problem fits in {budget_seconds:g} s (needs {c.seconds[0]:.3g} s)"
        for m, c in zip(models, curves)
        if m.k == 0
    ]
    notes += [f"{m.label}: budget exceeds the run's n={m.k} samples; accuracy held at k={m.k}" for m in models if m.saturated]
    ranked = sorted(zip(models, curves), key=lambda mc: -mc[0].accuracy)
    verdict = BudgetVerdict(budget_seconds, metric, models, None, 0.0, notes=notes)
    if len(ranked) < 2:
        verdict.winner = ranked[0][0].label
        return verdict
    (best, best_curve), (second, second_curve) = ranked[0], ranked[1]
    verdict.difference = best.accuracy - second.accuracy
    verdict.winner = best.label if verdict.difference > 0 else None
    if best_curve.problems is None or second_curve.problems is None:
        verdict.notes.append("curves carry no samples: no paired interval")
        return verdict
    shared = [pid for pid in best_curve.problems.ids if pid in set(second_curve.problems.ids)]
    if len(shared) < max(len(best_curve.problems), len(second_curve.problems)):
        verdict.notes.append(f"compared on the {len(shared)} problems both runs scored")
    if not shared:
        verdict.notes.append("the runs share no problem: no paired interval")
        return verdict
    diff, lo, hi, p = paired_difference(
        best_curve.problems.subset(shared), best.k, second_curve.problems.subset(shared), second.k, metric,
        level=confidence, resamples=resamples, seed=seed,
    )
    verdict.difference, verdict.diff_low, verdict.diff_high, verdict.p_value = diff, lo, hi, p
    return verdict


def paired_difference(
    a: ProblemSet, k_a: int, b: ProblemSet, k_b: int, metric: str, *, level: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float, float]:
    """Mean of A at k_a minus B at k_b on the same problems: (diff, low, high, p).

    ``m1eval.bootstrap.paired_comparison`` compares two runs at one k; a time budget
    buys each model its own k, so this pairs the two sides with the same problem draws
    (bootstrap's ``_paired_replicates``). k = 0 means the model could not afford one
    sample and scores 0 on every problem. The p-value is the same sign-flip
    randomisation test as ``paired_comparison``'s.
    """
    if a.ids != b.ids:
        raise BudgetError("paired_difference needs the same problems, in the same order, on both sides")
    zeros = np.zeros(len(a))
    va = per_problem(a, [k_a], metric, seed=seed)[:, 0] if k_a else zeros
    vb = per_problem(b, [k_b], metric, seed=seed)[:, 0] if k_b else zeros
    diffs = va - vb
    observed = float(diffs.mean())
    if resamples <= 0:
        return observed, float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(len(a), size=(resamples, len(a)))
    ra = _paired_replicates(a, np.array([k_a]), metric, resamples, rng, 32, draws_from=drawn)[0] if k_a else np.zeros(resamples)
    rb = _paired_replicates(b, np.array([k_b]), metric, resamples, rng, 32, draws_from=drawn)[0] if k_b else np.zeros(resamples)
    alpha = (1 - level) / 2
    low, high = (float(x) for x in np.quantile(ra - rb, [alpha, 1 - alpha]))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, len(diffs)))
    flipped = np.abs((signs * diffs).mean(axis=1))
    p_value = float((1 + np.sum(flipped >= abs(observed) - 1e-12)) / (resamples + 1))
    return observed, low, high, p_value


def crossovers(a: BudgetCurve, b: BudgetCurve) -> list[tuple[float, str]]:
    """Budgets at which the more accurate model changes, with the model that leads from there.

    Both accuracies are step functions of the budget (a model holds its accuracy until it
    can afford the next k), so the leader can only change at one of the two curves' prices.
    Ties do not end a lead; a model that cannot yet afford one sample scores 0.
    """
    prices = sorted(set(a.seconds.tolist()) | set(b.seconds.tolist()))
    out: list[tuple[float, str]] = []
    leader: str | None = None
    for price in prices:
        da = a.accuracy_at(price) - b.accuracy_at(price)
        now = a.label if da > 0 else b.label if da < 0 else None
        if now is not None and now != leader:
            if leader is not None:
                out.append((price, now))
            leader = now
    return out


def default_budgets(curves: Sequence[BudgetCurve], count: int = 6) -> list[float]:
    """Log-spaced budgets between the cheapest first sample and the dearest full run."""
    lo = min(float(c.seconds[0]) for c in curves)
    hi = max(float(c.seconds[-1]) for c in curves)
    if hi <= lo:
        return [lo]
    return [float(x) for x in np.geomspace(lo, hi, count)]


# ---------------------------------------------------------------------------- inputs


def match_profile(run: RunData, profiles: Sequence[ThroughputProfile]) -> ThroughputProfile | None:
    """The profile of the run's model: same display name, preset, hub id or folder."""
    from m1eval.plot_style import canonical

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
) -> Clock:
    """``source``: 'profile' (must match), 'batches' (the run's own timings) or 'auto' (profile if any).

    ``length_aware`` prices the run's mean completion length through the profile's
    length sweep (see ``clock_from_profile``).
    """
    if source not in ("auto", "profile", "batches"):
        raise BudgetError(f"--clock must be auto, profile or batches, got {source!r}")
    prof = match_profile(run, profiles) if source != "batches" else None
    if prof is not None:
        mean_tokens = float(run.frame["completion_tokens"].mean()) if length_aware else None
        try:
            return clock_from_profile(prof, batch_size, mean_tokens)
        except ProfileError as exc:
            raise BudgetError(f"{run.path}: {exc}") from None
    if source == "profile":
        have = ", ".join(p.name for p in profiles) or "none given"
        raise BudgetError(f"{run.path}: no --profile matches model {run.model!r} (profiles: {have})")
    return clock_from_batches(run)
