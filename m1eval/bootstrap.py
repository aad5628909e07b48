"""Per-problem curves, two-level bootstrap intervals and paired comparisons of runs.

Uncertainty in a test-time scaling curve has two sources: which problems the benchmark
happens to contain, and which n samples the model happened to draw for each. The
two-level bootstrap resamples both: problems with replacement, then each chosen
problem's samples with replacement, and recomputes the exact estimator.

Cost. The inner level is exact and fresh for pass@k (resampled correct counts are
Binomial(n, c/n), and pass@k is a table look-up). For the voting metrics an exact
evaluation costs ~1 ms, too much for B x problems fresh draws, so each problem gets a
pool of inner resamples computed once (identical vote profiles are cached), and every
outer replicate picks one pool member per drawn problem at random. The pool size adapts
to the number of problems (``auto_pool``: 64 for AIME-sized sets, 8 for 500 problems):
averaged over many problems a small pool still represents the inner spread, and the
outer level, which dominates the interval, is exact. Weighted voting is itself a Monte
Carlo estimate (random orders), with fewer orders inside the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from m1eval import metrics as M

METRICS = ("pass", "maj", "maj_first", "best", "wmaj")
METRIC_LABELS = {
    "pass": "pass@k",
    "maj": "maj@k",
    "maj_first": "maj@k (first k)",
    "best": "best-of-k",
    "wmaj": "weighted maj@k",
}
SCORED = ("best", "wmaj")


@dataclass
class ProblemSet:
    """The samples of one run as per-problem arrays: what the statistics resample."""

    ids: list[str]
    clusters: list[np.ndarray]  # int class id per sample, -1 = no answer
    correct: list[np.ndarray]  # bool per sample
    scores: list[np.ndarray] | None = None  # float per sample (NaN = none), or None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, scores: pd.Series | None = None) -> ProblemSet:
        """From ``RunData.frame`` (one row per graded sample, sample order kept)."""
        ids, clusters, correct, score_list = [], [], [], []
        cluster_col = frame["cluster"].astype("Float64").fillna(-1).astype("int64").to_numpy()
        correct_col = frame["correct"].to_numpy(dtype=bool)
        score_col = None if scores is None else scores.to_numpy(dtype=float)
        for pid, rows in frame.groupby("problem_id", sort=False).indices.items():
            ids.append(str(pid))
            clusters.append(cluster_col[rows])
            correct.append(correct_col[rows])
            if score_col is not None:
                score_list.append(score_col[rows])
        return cls(ids, clusters, correct, score_list if score_col is not None else None)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(c) for c in self.correct], dtype=np.int64)

    @property
    def n(self) -> int:
        return int(self.sizes.min()) if len(self) else 0

    def subset(self, ids: Sequence[str]) -> ProblemSet:
        where = {pid: i for i, pid in enumerate(self.ids)}
        take = [where[pid] for pid in ids]
        return ProblemSet(
            [self.ids[i] for i in take],
            [self.clusters[i] for i in take],
            [self.correct[i] for i in take],
            None if self.scores is None else [self.scores[i] for i in take],
        )


def available_metrics(problems: ProblemSet, wanted: Sequence[str] = METRICS) -> list[str]:
    unknown = set(wanted) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; choose from {METRICS}")
    return [m for m in wanted if m not in SCORED or problems.scores is not None]


# ---------------------------------------------------------------------------- per-problem values


class _MajorityCache:
    """Exact maj curves keyed by vote profile: resamples of easy/hard problems repeat a lot."""

    def __init__(self) -> None:
        self.store: dict[tuple, np.ndarray] = {}

    def __call__(self, clusters: np.ndarray, correct: np.ndarray) -> np.ndarray:
        sizes, weights, abstain, _ = M._classes(clusters, correct)
        order = np.lexsort((weights, sizes))
        key = (abstain, sizes[order].tobytes(), weights[order].tobytes())
        curve = self.store.get(key)
        if curve is None:
            curve = self.store[key] = M.majority_curve_from_counts(sizes, weights, abstain)
        return curve


def problem_values(
    clusters: np.ndarray,
    correct: np.ndarray,
    scores: np.ndarray | None,
    ks: np.ndarray,
    metric: str,
    *,
    cache: _MajorityCache | None = None,
    draws: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """One problem's metric at each k in ``ks`` (all k <= its sample count)."""
    idx = ks - 1
    if metric == "pass":
        return M.pass_curve(len(correct), np.array([int(correct.sum())]), ks)[0]
    if metric == "maj":
        return (cache or _MajorityCache())(clusters, correct)[idx]
    if metric == "maj_first":
        return M.majority_first_curve(clusters, correct)[idx]
    if scores is None:
        raise ValueError(f"metric {metric!r} needs per-sample scores")
    if metric == "best":
        return M.best_of_curve(correct, scores)[idx]
    if metric == "wmaj":
        return M.weighted_majority_curve(clusters, correct, np.clip(scores, 0, None), draws=draws, seed=seed)[idx]
    raise ValueError(f"unknown metric {metric!r}")


def per_problem(problems: ProblemSet, ks: Sequence[int], metric: str, *, draws: int = 200, seed: int = 0) -> np.ndarray:
    """Matrix (problems, len(ks)) of point estimates; the curve is its column mean."""
    ks = _check_ks(problems, ks)
    if metric == "pass":
        out = np.empty((len(problems), len(ks)))
        sizes = problems.sizes
        hits = np.array([c.sum() for c in problems.correct])
        for size in np.unique(sizes):
            rows = sizes == size
            out[rows] = M.pass_curve(int(size), hits[rows], ks)
        return out
    cache = _MajorityCache()
    return np.stack(
        [
            problem_values(cl, co, None if problems.scores is None else problems.scores[i], ks, metric, cache=cache, draws=draws, seed=seed + i)
            for i, (cl, co) in enumerate(zip(problems.clusters, problems.correct))
        ]
    )


def _check_ks(problems: ProblemSet, ks: Sequence[int]) -> np.ndarray:
    ks = np.asarray(list(ks), dtype=np.int64)
    if len(problems) == 0:
        raise ValueError("no graded problems to score")
    if ks.size == 0 or ks.min() < 1 or ks.max() > problems.n:
        raise ValueError(f"k must lie in 1..{problems.n} (the fewest samples any problem has), got {ks.tolist()}")
    return ks


# ---------------------------------------------------------------------------- bootstrap


@dataclass
class CurveCI:
    """A curve with its bootstrap interval: one entry per k."""

    metric: str
    ks: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    se: np.ndarray
    level: float
    resamples: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"metric": self.metric, "k": self.ks, "value": self.point, "ci_low": self.low, "ci_high": self.high, "se": self.se}
        )


POOL_BUDGET = 4000  # exact voting evaluations a default bootstrap may spend (~1 ms each)


def auto_pool(n_problems: int) -> int:
    """Inner resamples per problem: many for AIME-sized sets, at least 8 for MATH500-sized ones."""
    return int(min(64, max(8, POOL_BUDGET // max(n_problems, 1))))


def _inner_pool(problems: ProblemSet, ks: np.ndarray, metric: str, pool: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    """(problems, pool, len(ks)): the metric on ``pool`` within-problem resamples of each problem."""
    cache = _MajorityCache()
    out = np.empty((len(problems), pool, len(ks)))
    for p in range(len(problems)):
        clusters, correct = problems.clusters[p], problems.correct[p]
        scores = None if problems.scores is None else problems.scores[p]
        n = len(correct)
        picks = rng.integers(n, size=(pool, n))
        for r in range(pool):
            take = picks[r]
            out[p, r] = problem_values(
                clusters[take], correct[take], None if scores is None else scores[take], ks, metric,
                cache=cache, draws=draws, seed=int(rng.integers(2**31)),
            )
    return out


def _outer(values_for: callable, n_problems: int, resamples: int, rng: np.random.Generator, chunk: int = 64) -> np.ndarray:
    """(resamples, K) replicate curves: mean of ``values_for(problem_idx, rng)`` over drawn problems."""
    reps = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = rng.integers(n_problems, size=(size, n_problems))
        reps.append(values_for(drawn, rng).mean(axis=1))
    return np.concatenate(reps)


def replicate_curves(
    problems: ProblemSet, ks: Sequence[int], metric: str, *, resamples: int = 1000, seed: int = 0, pool: int | None = None, draws: int = 32
) -> np.ndarray:
    """(resamples, len(ks)) two-level bootstrap replicates of the mean curve."""
    ks = _check_ks(problems, ks)
    rng = np.random.default_rng(seed)
    pool = pool or auto_pool(len(problems))
    if metric == "pass":
        sizes = problems.sizes
        rate = np.array([c.mean() for c in problems.correct])

        def values_for(drawn: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            n = sizes[drawn]
            hits = rng.binomial(n, rate[drawn])  # inner level: resampled correct counts
            out = np.empty(drawn.shape + (len(ks),))
            for size in np.unique(n):
                rows = n == size
                out[rows] = M.pass_curve(int(size), hits[rows], ks)
            return out
    else:
        table = _inner_pool(problems, ks, metric, pool, rng, draws)

        def values_for(drawn: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            return table[drawn, rng.integers(pool, size=drawn.shape)]

    return _outer(values_for, len(problems), resamples, rng)


def bootstrap_curve(
    problems: ProblemSet,
    ks: Sequence[int],
    metric: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    pool: int | None = None,
    draws: int = 32,
    point: np.ndarray | None = None,
) -> CurveCI:
    """Point curve (exact) with percentile intervals from the two-level bootstrap."""
    ks = _check_ks(problems, ks)
    if point is None:
        point = per_problem(problems, ks, metric, seed=seed).mean(axis=0)
    if resamples <= 0:
        nan = np.full(len(ks), np.nan)
        return CurveCI(metric, ks, point, nan, nan, nan, level, 0)
    reps = replicate_curves(problems, ks, metric, resamples=resamples, seed=seed, pool=pool, draws=draws)
    alpha = (1 - level) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha], axis=0)
    return CurveCI(metric, ks, point, low, high, reps.std(axis=0, ddof=1), level, resamples)


# ---------------------------------------------------------------------------- paired comparison


@dataclass
class Comparison:
    """Run A minus run B on the problems both contain, for one metric at one k."""

    metric: str
    k: int
    a: str
    b: str
    value_a: float
    value_b: float
    diff: float
    low: float
    high: float
    p_value: float
    n_problems: int
    level: float
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)


def paired_comparison(
    a: ProblemSet,
    b: ProblemSet,
    metric: str = "pass",
    k: int = 1,
    *,
    names: tuple[str, str] = ("a", "b"),
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    pool: int | None = None,
) -> Comparison:
    """Difference of means with a paired two-level bootstrap interval and a sign-flip p-value.

    Problems are matched by id; both runs are resampled with the *same* problem draws
    (that is what pairs them), samples within each run independently. The p-value is a
    paired randomisation test: under "no difference" each problem's difference is equally
    likely to have either sign, so p = share of random sign flips whose mean difference
    is at least as far from 0 as the observed one (two-sided, with +1 smoothing).
    """
    common = [pid for pid in a.ids if pid in set(b.ids)]
    if not common:
        raise ValueError(f"runs {names[0]} and {names[1]} share no problem ids; cannot pair them")
    only_a = [pid for pid in a.ids if pid not in set(common)]
    only_b = [pid for pid in b.ids if pid not in set(a.ids)]
    pa, pb = a.subset(common), b.subset(common)
    ks = np.array([k])
    _check_ks(pa, ks), _check_ks(pb, ks)
    va = per_problem(pa, ks, metric, seed=seed)[:, 0]
    vb = per_problem(pb, ks, metric, seed=seed)[:, 0]
    diffs = va - vb
    observed = float(diffs.mean())
    rng = np.random.default_rng(seed)
    pool = pool or auto_pool(len(common))
    if resamples > 0:
        ra = _paired_replicates(pa, ks, metric, resamples, rng, pool)
        rb = _paired_replicates(pb, ks, metric, resamples, rng, pool, draws_from=ra[1])
        rep = ra[0] - rb[0]
        alpha = (1 - level) / 2
        low, high = (float(x) for x in np.quantile(rep, [alpha, 1 - alpha]))
        signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, len(diffs)))
        flipped = np.abs((signs * diffs).mean(axis=1))
        p_value = float((1 + np.sum(flipped >= abs(observed) - 1e-12)) / (resamples + 1))
    else:
        low = high = p_value = float("nan")
    return Comparison(
        metric, int(k), names[0], names[1], float(va.mean()), float(vb.mean()), observed, low, high, p_value,
        len(common), level, only_a, only_b,
    )


def _paired_replicates(
    problems: ProblemSet, ks: np.ndarray, metric: str, resamples: int, rng: np.random.Generator, pool: int,
    draws_from: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Replicate means for one side; ``draws_from`` reuses the other side's problem draws."""
    drawn = draws_from if draws_from is not None else rng.integers(len(problems), size=(resamples, len(problems)))
    if metric == "pass":
        sizes = problems.sizes[drawn]
        rate = np.array([c.mean() for c in problems.correct])[drawn]
        hits = rng.binomial(sizes, rate)
        values = np.empty(drawn.shape)
        for size in np.unique(sizes):
            rows = sizes == size
            values[rows] = M.pass_curve(int(size), hits[rows], ks)[:, 0]
    else:
        table = _inner_pool(problems, ks, metric, pool, rng, 32)[:, :, 0]
        values = table[drawn, rng.integers(pool, size=drawn.shape)]
    return values.mean(axis=1), drawn
