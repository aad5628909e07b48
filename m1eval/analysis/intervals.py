"""Per-problem curves, confidence intervals and paired comparisons of runs.

Uncertainty in a test-time scaling curve has two sources: which problems the benchmark
happens to contain, and which n samples the model happened to draw for each. Every
estimator in ``m1eval.analysis.metrics`` is, per problem, an unbiased estimate of that problem's
true metric (an average over all k-subsets of its n samples). So the mean over problems
is unbiased for the mean over new problems, and the spread of the per-problem estimates
already holds both sources of noise. The intervals build on that and state their target:

- ``population`` (default, every metric): the mean over new problems drawn like these,
  each with new samples (the superpopulation). A quasi-binomial score interval over the
  per-problem estimates (``score_interval``).
- ``fixed`` (pass@k, and avg@n = pass@1): the mean over new samples of these same
  problems. Per-problem sampling variances, unbiased where they can be (2k <= n).

The earlier two-level bootstrap (problems, then samples within each problem, then the
estimator on the resample) is gone: the inner level is biased near k = n (issue 17),
pulling pass@n and maj@n intervals below their own estimates. ``benchmarks/ci_coverage.py``
measures the coverage of every interval here against known truths; docs/statistics.md
says what each one means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from m1eval.analysis import metrics as M


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


def available_metrics(problems: ProblemSet, wanted: Sequence[str] | None = None) -> list[str]:
    """The ``wanted`` metrics (default: every registered one) these samples support: scored ones need scores."""
    wanted = list(M.REGISTRY) if wanted is None else list(wanted)
    unknown = set(wanted) - set(M.REGISTRY)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; choose from {tuple(M.REGISTRY)}")
    return [m for m in wanted if not M.REGISTRY[m].needs_scores or problems.scores is not None]


# ---------------------------------------------------------------------------- per-problem values


def per_problem(
    problems: ProblemSet, ks: Sequence[int] | np.ndarray, metric: str, *, draws: int = 200, seed: int = 0
) -> np.ndarray:
    """Matrix (problems, len(ks)) of point estimates; the curve is its column mean.

    The metric comes from the registry (``m1eval.analysis.metrics.REGISTRY``): its fast path for every
    problem at once when it has one, else its one-problem curve (problem i seeded ``seed + i``).
    """
    k_arr = _check_ks(problems, ks)
    info = M.metric_info(metric)
    if info.needs_scores and problems.scores is None:
        raise ValueError(f"metric {metric!r} needs per-sample scores")
    if info.many is not None:
        return info.many(problems.clusters, problems.correct, problems.scores, k_arr, draws=draws, seed=seed)
    return np.stack(
        [
            info.curve(cl, co, None if problems.scores is None else problems.scores[i], draws=draws, seed=seed + i)[
                k_arr - 1
            ]
            for i, (cl, co) in enumerate(zip(problems.clusters, problems.correct))
        ]
    )


def _check_ks(problems: ProblemSet, ks: Sequence[int] | np.ndarray) -> np.ndarray:
    k_arr = np.asarray(list(ks), dtype=np.int64)
    if len(problems) == 0:
        raise ValueError("no graded problems to score")
    if k_arr.size == 0 or k_arr.min() < 1 or k_arr.max() > problems.n:
        raise ValueError(f"k must lie in 1..{problems.n} (the fewest samples any problem has), got {k_arr.tolist()}")
    return k_arr


# ---------------------------------------------------------------------------- intervals


TARGETS = ("population", "fixed")


@dataclass
class CurveCI:
    """A curve with its interval: one entry per k. ``target`` says what the interval is for."""

    metric: str
    ks: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    se: np.ndarray
    level: float
    sign_flips: int
    target: str = "population"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "metric": self.metric,
                "k": self.ks,
                "value": self.point,
                "ci_low": self.low,
                "ci_high": self.high,
                "se": self.se,
            }
        )


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


NEAR_BOUND = 0.01  # values this close to 0 or 1 count as 0/1 for the dispersion guard


def score_interval(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, se) for the mean of each column of per-problem values in [0, 1].

    Why a score interval and not the percentile bootstrap: the per-problem values are
    bounded and, near k = n, piled up at 0 or 1. A percentile interval of their mean is
    then lopsided at P = 30 and collapses to zero width when every problem scores the
    same (every problem solved at k = n), although the truth is below 1. The Wilson
    score interval handles both for 0/1 data; for values between 0 and 1 the variance
    of the mean is phi * m (1 - m) / P with dispersion phi = s^2 / (m (1 - m)) <= 1, so
    this is the Wilson interval at the effective size P / phi (quasi-binomial). Far from
    the boundary it equals mean +- z s / sqrt(P); at the boundary it keeps the Wilson
    shape. Two guards for samples piled at a bound: 0/1 values are Bernoulli, so phi = 1
    exactly (all P problems solved gives [P / (P + z^2), 1], not [1, 1]), and so are values
    all within ``NEAR_BOUND`` of 0 or 1: 500 problems that all score 0.999-1 at pass@32
    cannot exclude that 0.5 % of such problems score 0, and with phi from their tiny
    spread the interval was 0.0005 wide and covered 80 % (easy prior, n = 64); otherwise phi
    is shrunk towards 1 by z^2 pseudo-problems of the largest variance a [0, 1] value
    allows (the z^2 pseudo-observations the Wilson interval adds to a proportion),
    phi = ((P - 1) phi_hat + z^2) / (P - 1 + z^2), because a sample in which every
    problem scores 1 or 0.9999 says little about the rare problems that make the
    variance. In benchmarks/ci_coverage.py one pseudo-problem was not enough at P = 30
    (pass@2, easy prior: 91 %); at P = 500 the shrinkage widens intervals by about 1 %.
    Small-P guard: the number of pseudo-problems grows with the share s of values within
    ``NEAR_BOUND`` of 0 or 1, to z^2 (1 + s). Values piled at a bound are where the sample's
    spread says least (the rule-of-three situation): 3.5 % of the easy prior's problems
    have maj@32 < 0.5, a 30-problem sample holds none of them a third of the time, its
    maj@32 values then sit mostly at 1 and the plain shrinkage covered 89 % (1500
    benchmarks). With the guard: 94 %; pass@1 and pass@2 at P = 30 rise from 97-98 % to
    98-99 % (about 3 % wider), and at P = 500 the guard changes widths by under 1 %. A
    uniform 2 z^2 reached 94 % too but widened every P = 30 interval more (pass@2 99.1 %).
    The interval always contains the mean.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    size = values.shape[0]
    z = _z(level)
    mean = values.mean(axis=0)
    var = values.var(axis=0, ddof=1) if size > 1 else np.zeros(values.shape[1])
    bern = mean * (1 - mean)
    phi_hat = np.where(bern > 0, var / np.where(bern > 0, bern, 1.0), 0.0)
    near = np.minimum(values, 1 - values) <= NEAR_BOUND
    binary, piled = np.all(near, axis=0), np.mean(near, axis=0)
    pseudo = z * z * (1 + piled)
    phi = np.where(binary, 1.0, np.minimum(((size - 1) * phi_hat + pseudo) / (size - 1 + pseudo), 1.0))
    eff = size / phi
    # Wilson with continuity correction (Newcombe 1998, method 4) at the effective size.
    a, c = 2 * eff * mean + z * z, 2 * (eff + z * z)
    inner_low = np.maximum(z * z - 2 - 1 / eff + 4 * mean * (eff * (1 - mean) + 1), 0.0)
    inner_high = np.maximum(z * z + 2 - 1 / eff + 4 * mean * (eff * (1 - mean) - 1), 0.0)
    low = np.where(mean <= 0, 0.0, (a - 1 - z * np.sqrt(inner_low)) / c)
    high = np.where(mean >= 1, 1.0, (a + 1 + z * np.sqrt(inner_high)) / c)
    low = np.clip(np.minimum(low, mean), 0.0, 1.0)
    high = np.clip(np.maximum(high, mean), 0.0, 1.0)
    return low, high, np.sqrt(var / size)


@lru_cache(maxsize=256)
def _posterior_variance(n: int, k: int) -> np.ndarray:
    """E[Var(pass@k estimate | q)] under q ~ Beta(c + 1/2, n - c + 1/2), for c = 0..n.

    Closed form: the estimate's second moment averages the beta-binomial pmf, and
    E[(1 - q)^j] = prod_{i<j} (b + i) / (a + b + i) for q ~ Beta(a, b).
    """
    v2 = (1.0 - M._miss_table(n)[k]) ** 2  # squared estimate for each count c'
    out = np.empty(n + 1)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in range(n + 1)])
    js = np.arange(n + 1)
    for c in range(n + 1):
        a, b = c + 0.5, n - c + 0.5
        log_bb = log_choose + _log_beta(js + a, n - js + b) - _log_beta(np.array([a]), np.array([b]))
        second = float(np.exp(log_bb) @ v2)
        m_k = math.exp(float(np.sum(np.log((b + np.arange(k)) / (a + b + np.arange(k))))))
        m_2k = math.exp(float(np.sum(np.log((b + np.arange(2 * k)) / (a + b + np.arange(2 * k))))))
        out[c] = max(second - (1 - 2 * m_k + m_2k), 0.0)
    out.setflags(write=False)
    return out


def _log_beta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lg = np.vectorize(math.lgamma)
    return lg(a) + lg(b) - lg(a + b)


def fixed_set_variance(problems: ProblemSet, ks: np.ndarray) -> np.ndarray:
    """Variance of the pass@k mean over new samples of these problems, for each k.

    Each problem contributes the expected sampling variance of its pass@k estimate
    under the Jeffreys posterior of its success rate, q ~ Beta(c + 1/2, n - c + 1/2).
    Why not an unbiased estimate: for 2k > n none exists (the squared truth is a
    polynomial of degree 2k in q, beyond what n samples identify), and where one exists
    (m_k^2 - m_2k, m_j = C(n - c, j) / C(n, j)) it is right on average but near k = n/2
    almost always far too small: the variance comes from rare low counts that a typical
    sample does not show (coverage 27 % at P = 30, n = 64, k = 32, easy prior). The
    posterior version errs wide instead (a never-solved problem gets some variance):
    in benchmarks/ci_coverage.py its variance is 1.0-1.3 x the truth at k <= 2 and up to
    ~4 x (where the variance is tiny) at k = n.
    """
    sizes = problems.sizes
    hits = np.array([int(c.sum()) for c in problems.correct])
    out = np.zeros(len(ks))
    for j, k in enumerate(ks):
        for size in np.unique(sizes):
            out[j] += _posterior_variance(int(size), int(k))[hits[sizes == size]].sum()
    return out / len(problems) ** 2


def interval_curve(
    problems: ProblemSet,
    ks: Sequence[int],
    metric: str,
    *,
    sign_flips: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    point: np.ndarray | None = None,
    target: str = "population",
    values: np.ndarray | None = None,
) -> CurveCI:
    """Point curve (exact) with an interval for each k; ``sign_flips=0`` gives none.

    ``target="population"`` (default): the interval is for the metric's mean over new
    problems drawn like these, each with new samples: ``score_interval`` over the
    per-problem unbiased estimates (valid for every metric and every k <= n).
    ``target="fixed"``: for the mean over new samples of these same problems (pass@k and
    avg@n only): point +- z sqrt(``fixed_set_variance``), clipped to [0, 1]. It is narrower,
    because the choice of problems is held fixed. The intervals are
    closed-form; ``sign_flips`` (the paired test's setting, passed through by the verbs) only
    switches them on (> 0) or off (0). Every interval contains its point estimate.
    ``values``: ``per_problem(problems, ks, metric, seed=seed)`` when the caller has it already.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if target == "fixed" and not M.metric_info(metric).fixed_set:
        raise ValueError(
            f"a fixed-set interval exists for {M.metric_names(fixed_set=True)} only, not {metric!r}; use target='population'"
        )
    k_arr = _check_ks(problems, ks)
    if values is None:
        values = per_problem(problems, k_arr, metric, seed=seed)
    elif values.shape != (len(problems), len(k_arr)):
        raise ValueError(f"values: expected shape {(len(problems), len(k_arr))} (problems, ks), got {values.shape}")
    if point is None:
        point = values.mean(axis=0)
    point = np.asarray(point, dtype=float)
    if sign_flips <= 0:
        nan = np.full(len(k_arr), np.nan)
        return CurveCI(metric, k_arr, point, nan, nan, nan, level, 0, target)
    if target == "population":
        low, high, se = score_interval(values, level)
    else:
        se = np.sqrt(fixed_set_variance(problems, k_arr))
        half = _z(level) * se
        low, high = np.clip(point - half, 0.0, 1.0), np.clip(point + half, 0.0, 1.0)
    return CurveCI(
        metric, k_arr, point, np.minimum(low, point), np.maximum(high, point), se, level, int(sign_flips), target
    )


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
    target: str = "population"


def ci_label(level: float) -> str:
    """How tables and figures name an interval: '95% CI', '90% CI', '99.9% CI'."""
    return f"{100 * level:.3g}% CI"


def paired_interval(va: np.ndarray, vb: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Interval for mean(va) - mean(vb), per-problem values in [0, 1] paired by row.

    Newcombe's hybrid score method for paired data, with each side's limits from
    ``score_interval``: low = d - sqrt(da^2 - 2 r da eb + eb^2), high = d + sqrt(ea^2 -
    2 r ea db + db^2), where da, ea (db, eb) are the distances from A's (B's) mean down
    and up to its limits and r is the correlation of the per-problem values (0 when
    either side has no spread), shrunk towards 0 by z^2 pseudo-problems like the
    dispersion in ``score_interval``: with 30 problems and no problem on which the runs
    disagree, r = 1 made the interval nearly [0, 0] (89 % coverage of a real pass@64
    difference in benchmarks/ci_coverage.py). Far from 0 and 1 and with many problems it
    is d +- z sd(diffs) / sqrt(P); when both runs solve every problem it still has width
    (the plain bootstrap gives [0, 0]). It targets the superpopulation and contains d.
    """
    va, vb = np.asarray(va, dtype=float), np.asarray(vb, dtype=float)
    la, ha, _ = score_interval(va, level)
    lb, hb, _ = score_interval(vb, level)
    ma, mb = va.mean(), vb.mean()
    r = 0.0
    if len(va) > 1 and va.std() > 1e-12 and vb.std() > 1e-12:
        r = float(np.corrcoef(va, vb)[0, 1]) * (len(va) - 1) / (len(va) - 1 + _z(level) ** 2)
    da, ea, db, eb = ma - la[0], ha[0] - ma, mb - lb[0], hb[0] - mb
    d = ma - mb
    low = d - math.sqrt(max(da * da - 2 * r * da * eb + eb * eb, 0.0))
    high = d + math.sqrt(max(ea * ea - 2 * r * ea * db + db * db, 0.0))
    return float(low), float(high)


def sign_flip_p_value(diffs: np.ndarray, sign_flips: int, rng: np.random.Generator) -> float:
    """Two-sided paired randomisation test of "A and B are exchangeable on every problem".

    Under that null each problem's difference is as likely to have either sign, so the
    p-value is the share of random sign flips whose |mean| reaches the observed one (+1
    smoothing). It is valid (size <= alpha) at any number of problems, but discrete: when
    few problems differ (pass@n, maj@n of strong models) few p-values are possible and
    the test rejects less often than alpha; see benchmarks/ci_coverage.py for its size
    and power.
    """
    observed = abs(float(diffs.mean()))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(sign_flips, len(diffs)))
    flipped = np.abs((signs * diffs).mean(axis=1))
    return float((1 + np.sum(flipped >= observed - 1e-12)) / (sign_flips + 1))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of A minus mean of B over the same problems, with its interval and p-value (NaN when not asked for)."""

    value_a: float
    value_b: float
    diff: float
    low: float
    high: float
    p_value: float


def paired_difference(
    a: ProblemSet,
    b: ProblemSet,
    metric: str,
    k_a: int,
    k_b: int | None = None,
    *,
    level: float = 0.95,
    sign_flips: int = 1000,
    seed: int = 0,
) -> PairedDifference:
    """The paired test: A at ``k_a`` minus B at ``k_b`` (default ``k_a``) on the same problems, in the same order.

    Each problem's value at k_a is paired with its value at k_b; the interval is
    ``paired_interval`` (Newcombe's paired score interval, for new problems) and the
    p-value ``sign_flip_p_value`` with ``sign_flips`` flips (0: neither). Two k exist because
    a time budget buys each model its own k (``m1eval.analysis.budget.priced``); k = 0 means the model could
    not afford one sample and scores 0 on every problem. (A percentile bootstrap of the
    paired means was [d, d], zero width, whenever every per-problem difference was equal.)
    """
    k_b = k_a if k_b is None else k_b
    if a.ids != b.ids:
        raise ValueError("a paired difference needs the same problems, in the same order, on both sides")
    zeros = np.zeros(len(a))
    va = per_problem(a, [k_a], metric, seed=seed)[:, 0] if k_a else zeros
    vb = per_problem(b, [k_b], metric, seed=seed)[:, 0] if k_b else zeros
    diffs = va - vb
    if sign_flips > 0:
        low, high = paired_interval(va, vb, level)
        p_value = sign_flip_p_value(diffs, sign_flips, np.random.default_rng(seed))
    else:
        low = high = p_value = float("nan")
    return PairedDifference(float(va.mean()), float(vb.mean()), float(diffs.mean()), low, high, p_value)


def paired_comparison(
    a: ProblemSet,
    b: ProblemSet,
    metric: str = "pass",
    k: int = 1,
    *,
    names: tuple[str, str] = ("a", "b"),
    sign_flips: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Comparison:
    """Two runs at one k, on the problems both contain (matched by id): ``paired_difference`` as a ``Comparison``.

    The interval is for the difference over new problems (superpopulation); the p-value is
    ``sign_flip_p_value`` with ``sign_flips`` flips. ``sign_flips=0`` gives neither.
    """
    common = [pid for pid in a.ids if pid in set(b.ids)]
    if not common:
        raise ValueError(f"runs {names[0]} and {names[1]} share no problem ids; cannot pair them")
    only_a = [pid for pid in a.ids if pid not in set(common)]
    only_b = [pid for pid in b.ids if pid not in set(a.ids)]
    pa, pb = a.subset(common), b.subset(common)
    ks = np.array([k])
    _check_ks(pa, ks), _check_ks(pb, ks)
    d = paired_difference(pa, pb, metric, int(k), level=level, sign_flips=sign_flips, seed=seed)
    return Comparison(
        metric,
        int(k),
        names[0],
        names[1],
        d.value_a,
        d.value_b,
        d.diff,
        d.low,
        d.high,
        d.p_value,
        len(common),
        level,
        only_a,
        only_b,
    )
