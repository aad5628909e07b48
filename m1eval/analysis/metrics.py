"""Test-time scaling estimators computed from *all* n stored samples of a problem.

Every estimator here is an expectation over a uniformly random k-subset of the n
samples, which is what "accuracy with k samples" means for a model that draws k i.i.d.
samples; using all n samples rather than the first k gives the same expectation with far
less variance. Voting is over answer equivalence classes (``Grade.cluster``), never over
answer strings, so "1/2" and "0.5" vote together.

Numerics. Subset counts are float64: C(n, k) stays finite up to n = 1024 (C(1024, 512) is
about 4.5e306), which is the supported limit of the exact majority vote. Ratios of
binomials use the product form prod (1 - k/i), never factorials, so pass@k is stable for
any n. All sums in the majority count add non-negative terms, so there is no cancellation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from m1eval.analysis import vote_draws

MAX_EXACT_N = 1024


# ---------------------------------------------------------------------------- helpers


@lru_cache(maxsize=8)
def _pascal(n: int) -> np.ndarray:
    """Float64 table C(i, j) for 0 <= i, j <= n (zero where j > i)."""
    if n > MAX_EXACT_N:
        raise ValueError(f"n={n} exceeds the supported {MAX_EXACT_N} samples per problem for exact counts")
    table = np.zeros((n + 1, n + 1))
    table[:, 0] = 1.0
    for i in range(1, n + 1):
        table[i, 1:] = table[i - 1, 1:] + table[i - 1, :-1]
    table.setflags(write=False)
    return table


def binomials(n: int) -> np.ndarray:
    """Shared Pascal table large enough for n (cached at the next power of two)."""
    size = 1 << max(int(n), 1).bit_length()
    return _pascal(min(size, MAX_EXACT_N) if n <= MAX_EXACT_N else n)


@lru_cache(maxsize=64)
def _miss_table(n: int) -> np.ndarray:
    """T[k, c] = C(n - c, k) / C(n, k) for 0 <= k, c <= n, in product form.

    C(n-c, k)/C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i) when n - c >= k, else 0. For each k
    the running product over i = n, n-1, ... is a cumulative sum of log1p(-k/i).
    """
    k = np.arange(n + 1)[:, None].astype(float)
    i = np.arange(n, 0, -1)[None, :].astype(float)  # i = n, n-1, ..., 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.log1p(-np.minimum(k / i, 1.0))
    logs = np.concatenate([np.zeros((n + 1, 1)), np.cumsum(terms, axis=1)], axis=1)  # c = 0..n
    table = np.exp(logs)
    c = np.arange(n + 1)[None, :]
    table[(n - c) < k] = 0.0
    table.setflags(write=False)
    return table


def _as_int_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integers, got {value!r}")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers, got {value!r}")
    return arr.astype(np.int64)


def powers_of_two(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n, plus n itself when n is not a power of two."""
    ks = [1 << i for i in range(max(int(n), 1).bit_length()) if (1 << i) <= n]
    if n >= 1 and ks[-1] != n:
        ks.append(int(n))
    return ks


def k_grid(n: int, every_k: bool = False) -> list[int]:
    return list(range(1, n + 1)) if every_k else powers_of_two(n)


# ---------------------------------------------------------------------------- pass@k


def pass_at_k(n, c, k):
    """Unbiased pass@k of Chen et al. (2021): 1 - C(n-c, k) / C(n, k).

    ``n``, ``c`` and ``k`` broadcast against each other (one entry per problem, say);
    returns a float for scalar input, else an array.
    """
    n_a, c_a, k_a = np.broadcast_arrays(_as_int_array("n", n), _as_int_array("c", c), _as_int_array("k", k))
    if np.any(n_a < 1):
        raise ValueError("pass_at_k: n must be >= 1")
    if np.any((c_a < 0) | (c_a > n_a)):
        raise ValueError("pass_at_k: need 0 <= c <= n")
    if np.any((k_a < 1) | (k_a > n_a)):
        raise ValueError("pass_at_k: need 1 <= k <= n")
    out = np.empty(n_a.shape, dtype=float)
    for size in np.unique(n_a):
        mask = n_a == size
        out[mask] = 1.0 - _miss_table(int(size))[k_a[mask], c_a[mask]]
    if out.ndim == 0:
        return float(out)
    return out


def pass_curve(n: int, c: np.ndarray, ks: Sequence[int] | np.ndarray) -> np.ndarray:
    """pass@k for problems with n samples each and c correct: shape (problems, len(ks))."""
    table = _miss_table(int(n))
    return 1.0 - table[np.asarray(ks)[None, :], np.asarray(c)[:, None]]


# ---------------------------------------------------------------------------- voting helpers


def _class_ids(clusters) -> np.ndarray:
    """Integer class ids, -1 for a sample without an answer (None, NaN or pandas NA)."""
    if isinstance(clusters, np.ndarray) and clusters.dtype.kind in "iu":
        if clusters.size and clusters.min() < -1:
            raise ValueError(f"cluster ids must be >= 0 (or -1 for no answer), got {int(clusters.min())}")
        return clusters.astype(np.int64)
    out = np.empty(len(clusters), dtype=np.int64)
    for i, c in enumerate(clusters):
        try:
            missing = c is None or bool(c != c)  # noqa: PLR0124 - NaN is the value unequal to itself
        except TypeError:  # pandas.NA compares to NA
            missing = True
        out[i] = -1 if missing else int(c)
        if out[i] < -1:
            raise ValueError(f"cluster ids must be >= 0, got {c!r}")
    return out


def _classes(clusters, correct) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Class sizes, class correctness weights, abstentions and n from per-sample inputs.

    A class's weight is the fraction of its samples graded correct (0 or 1 when the
    grader is consistent); it is the chance a vote won by that class is right.
    """
    correct = np.asarray(correct, dtype=bool)
    if len(clusters) != len(correct):
        raise ValueError(f"clusters ({len(clusters)}) and correct ({len(correct)}) differ in length")
    ids = _class_ids(clusters)
    voting = ids >= 0
    labels, inverse = np.unique(ids[voting], return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(labels)).astype(np.int64)
    hits = np.bincount(inverse, weights=correct[voting].astype(float), minlength=len(labels))
    weights = hits / np.maximum(sizes, 1)
    return sizes, weights, int((~voting).sum()), len(ids)


def majority_curve_from_counts(sizes: np.ndarray, weights: np.ndarray, abstain: int) -> np.ndarray:
    """Expected majority-vote accuracy for every k = 1..n (index k-1), exactly.

    For a class j with m members to win a k-subset with v of its votes, every other class
    needs at most v votes; a class with fewer than v members can never reach v, so it
    merges with the abstentions into one binomial factor, and only the "big" classes
    (at least v members) need their own factor sum_{x<v} C(s,x) z^x + y C(s,v) z^v. The
    coefficient of z^r y^t counts subsets with r other samples and t classes tied with j;
    a tie among t+1 winners is won with probability 1/(t+1). Summing C(m, v) * count over
    v and r gives the (co-)winning count for every k = v + r at once.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    n = int(sizes.sum() + abstain)
    if n == 0:
        return np.zeros(0)
    if not np.any(weights > 0):
        return np.zeros(n)
    if len(sizes) == 1:  # one class: right iff anybody votes
        return weights[0] * (1.0 - _miss_table(n)[np.arange(1, n + 1), n - abstain])
    binom = binomials(n)
    total = np.zeros(n + 1)
    for j in np.flatnonzero(weights > 0):
        total += weights[j] * _winning_counts(sizes, j, abstain, binom)
    # Rounding can leave a hair above 1 where j wins every subset.
    return np.clip(total[1:] / binom[n, 1 : n + 1], 0.0, 1.0)


def _winning_counts(sizes: np.ndarray, j: int, abstain: int, binom: np.ndarray) -> np.ndarray:
    """sum over k-subsets of 1/(number of co-winners) when class j (co-)wins, for k = 0..n."""
    n = int(sizes.sum() + abstain)
    m = int(sizes[j])
    others = np.delete(sizes, j)
    width = n - m + 1  # r = number of non-j samples in the subset, 0..n-m
    counts = np.zeros(n + 1)
    top = int(others.max()) if len(others) else 0
    if top < m:
        # With more than `top` votes j beats everyone: C(m, v) * C(n - m, r) ways, one convolution.
        sure = np.convolve(binom[m, top + 1 : m + 1], binom[n - m, :width])
        counts[top + 1 : top + 1 + len(sure)] += sure
    for v in range(1, min(m, top) + 1):
        big = others[others >= v]
        small = int(abstain + others[others < v].sum())
        poly = np.zeros((len(big) + 1, width))
        poly[0] = binom[small, :width]
        for t, s in enumerate(big, start=1):
            grown = np.zeros_like(poly)
            head = binom[s, : min(v, width)]
            if v <= 3:
                for x in range(len(head)):
                    grown[:t, x:] += head[x] * poly[:t, : width - x]
            else:
                for row in range(t):
                    grown[row] = np.convolve(poly[row], head)[:width]
            if v < width:
                grown[1 : t + 1, v:] += binom[s, v] * poly[:t, : width - v]
            poly = grown
        ways = (poly / np.arange(1, len(big) + 2)[:, None]).sum(axis=0)
        counts[v : v + width] += binom[m, v] * ways[: n + 1 - v]
    return counts


def majority_curve(clusters, correct) -> np.ndarray:
    """Expected maj@k for every k = 1..n of one problem (index k-1)."""
    sizes, weights, abstain, n = _classes(clusters, correct)
    if n == 0:
        raise ValueError("majority_curve: no samples")
    return majority_curve_from_counts(sizes, weights, abstain)


def majority_at_k(clusters, correct, k: int) -> float:
    """Expected accuracy of a majority vote over a uniformly random k-subset of the samples.

    ``clusters`` holds one class id per sample (None: no answer, does not vote); ties are
    broken uniformly at random; a subset in which nobody votes is wrong.
    """
    n = len(correct)
    if not 1 <= k <= n:
        raise ValueError(f"majority_at_k: need 1 <= k <= n={n}, got k={k}")
    return float(majority_curve(clusters, correct)[k - 1])


def majority_first_curve(clusters, correct) -> np.ndarray:
    """Majority vote over the *first* k samples (by position) for every k = 1..n.

    Kept for comparison with harnesses that report it: it depends on sample order and
    has more variance than ``majority_curve``. A tie counts as a uniformly random pick
    (its expected value); a prefix with no votes is wrong.
    """
    sizes, weights, _, n = _classes(clusters, correct)
    if len(sizes) == 0:
        return np.zeros(n)
    ids = _class_ids(clusters)
    labels = np.unique(ids[ids >= 0])
    votes = np.zeros((n, len(labels)))
    rows = np.flatnonzero(ids >= 0)
    votes[rows, np.searchsorted(labels, ids[rows])] = 1.0
    running = np.cumsum(votes, axis=0)
    top = running.max(axis=1, keepdims=True)
    winners = (running == top) & (top > 0)
    return (winners @ weights) / np.maximum(winners.sum(axis=1), 1)


def majority_at_k_first(clusters, correct, k: int) -> float:
    """Majority vote over the first k samples; see ``majority_first_curve``."""
    n = len(correct)
    if not 1 <= k <= n:
        raise ValueError(f"majority_at_k_first: need 1 <= k <= n={n}, got k={k}")
    return float(majority_first_curve(clusters, correct)[k - 1])


@dataclass(frozen=True)
class _Ballot:
    """One problem's score-weighted vote: who votes for which class, with what score, and how right each class is."""

    classes: np.ndarray  # class index of each sample, -1 where it abstains (no answer or a NaN score)
    votes: np.ndarray  # samples x classes, 1 where a sample votes for a class
    class_weight: np.ndarray  # each class's share of correct samples
    scores: np.ndarray  # each sample's score, 0 where NaN

    @property
    def consistent(self) -> bool:
        """Every class all right or all wrong (as m1eval's grader makes them): its shares are exact
        sums, whatever k they are asked at (``vote_draws.vote_shares``)."""
        return bool(np.all((self.class_weight == 0) | (self.class_weight == 1)))


def _weighted_ballot(name: str, clusters, correct, scores: np.ndarray) -> _Ballot | None:
    """The ballot of a score-weighted vote, or None when no sample votes. A NaN score, like a
    missing answer, abstains."""
    if len(scores) != len(correct) or len(clusters) != len(correct):
        raise ValueError(f"{name}: clusters, correct and scores differ in length")
    if np.any(scores < 0):
        raise ValueError(f"{name}: scores must be >= 0 (NaN for no vote)")
    ids = _class_ids(clusters)
    ids[np.isnan(scores)] = -1
    voting = ids >= 0
    if not voting.any():
        return None
    labels, inverse = np.unique(ids[voting], return_inverse=True)
    classes = np.full(len(scores), -1, dtype=np.int64)
    classes[voting] = inverse
    votes = np.zeros((len(scores), len(labels)))
    votes[np.flatnonzero(voting), inverse] = 1.0
    class_weight = (np.asarray(correct, dtype=float) @ votes) / votes.sum(axis=0)
    return _Ballot(classes, votes, class_weight, np.nan_to_num(scores))


def weighted_majority_at_k(
    clusters, correct, scores, k: int, *, draws: int = 4000, seed: int = 0, exact_limit: int = 20000
) -> float:
    """Expected accuracy of a score-weighted vote (largest class total score wins) over k-subsets.

    Scores must be non-negative (e.g. verifier probabilities); a NaN score, like a missing
    answer, means the sample does not vote. Ties are broken uniformly at random. The
    expectation is exact (every k-subset enumerated) when C(n, k) <= ``exact_limit``,
    otherwise the mean over ``draws`` seeded random k-subsets: sums of real-valued
    scores have no closed-form subset count.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(correct)
    if len(scores) != n or len(clusters) != n:
        raise ValueError("weighted_majority_at_k: clusters, correct and scores differ in length")
    if not 1 <= k <= n:
        raise ValueError(f"weighted_majority_at_k: need 1 <= k <= n={n}, got k={k}")
    ballot = _weighted_ballot("weighted_majority_at_k", clusters, correct, scores)
    if ballot is None:
        return 0.0
    votes, class_weight = ballot.votes, ballot.class_weight
    if n <= MAX_EXACT_N and binomials(n)[n, k] <= exact_limit:
        from itertools import combinations

        subsets = np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    else:
        rng = np.random.default_rng(seed)
        subsets = np.argsort(rng.random((draws, n)), axis=1)[:, :k]
    member = np.zeros((len(subsets), n))
    np.put_along_axis(member, subsets, 1.0, axis=1)
    present = (member @ votes) > 0
    totals = np.where(present, member @ (votes * ballot.scores[:, None]), -np.inf)
    best = totals.max(axis=1, keepdims=True)
    winners = present & (totals == best)
    share = winners / np.maximum(winners.sum(axis=1, keepdims=True), 1)
    return float((share @ class_weight).mean())


def weighted_majority_curve(clusters, correct, scores, *, draws: int = 1000, seed: int = 0) -> np.ndarray:
    """Score-weighted vote accuracy for every k = 1..n, estimated from ``draws`` random orders.

    The first k samples of a uniformly random order are a uniformly random k-subset, so
    one set of seeded permutations estimates every k at once (Monte Carlo; standard error
    at most 0.5/sqrt(draws)). Use ``weighted_majority_at_k`` for an exact value at small n.
    """
    scores = np.asarray(scores, dtype=float)
    n = len(correct)
    if len(scores) != n or len(clusters) != n or n == 0:
        raise ValueError("weighted_majority_curve: clusters, correct and scores must be non-empty, equal length")
    ballot = _weighted_ballot("weighted_majority_curve", clusters, correct, scores)
    if ballot is None:
        return np.zeros(n)
    return _ballot_shares(ballot, draws, seed, np.arange(n))


def _ballot_shares(ballot: _Ballot, draws: int, seed: int, at: np.ndarray) -> np.ndarray:
    """``weighted_majority_curve(...)[at]`` of one problem's ballot, voted in the orders of ``seed``."""
    orders = vote_draws.random_orders(len(ballot.classes), draws, [seed])
    return vote_draws.vote_shares(ballot.classes[None], ballot.scores[None], ballot.class_weight[None], orders, at)[0]


def best_of_curve(correct, scores) -> np.ndarray:
    """Expected correctness of the top-scored sample of a random k-subset, every k = 1..n.

    Exact: the subset's top score lands in tie group G with probability
    [C(#scores <= s_G, k) - C(#scores < s_G, k)] / C(n, k), and the pick inside G is
    uniform, so it is right with G's mean correctness. NaN scores rank lowest.
    """
    correct = np.asarray(correct, dtype=float)
    scores = np.asarray(scores, dtype=float)
    n = len(correct)
    if len(scores) != n or n == 0:
        raise ValueError("best_of: correct and scores must be non-empty and of equal length")
    keyed = np.where(np.isnan(scores), -np.inf, scores)
    values, inverse = np.unique(keyed, return_inverse=True)
    group_size = np.bincount(inverse, minlength=len(values))
    group_mean = np.bincount(inverse, weights=correct, minlength=len(values)) / group_size
    at_most = np.cumsum(group_size)  # samples with score <= s_G
    below = at_most - group_size
    miss = _miss_table(n)  # miss[k, c] = C(n - c, k) / C(n, k)
    ks = np.arange(1, n + 1)[:, None]
    prob = miss[ks, (n - at_most)[None, :]] - miss[ks, (n - below)[None, :]]
    return prob @ group_mean


def best_of_k(correct, scores, k: int) -> float:
    """Expected correctness of the highest-scored of a uniformly random k-subset (exact)."""
    n = len(correct)
    if not 1 <= k <= n:
        raise ValueError(f"best_of_k: need 1 <= k <= n={n}, got k={k}")
    return float(best_of_curve(correct, scores)[k - 1])


# ---------------------------------------------------------------------------- avg@n


def avg_at_n(correct_fraction) -> tuple[float, float]:
    """Mean per-problem accuracy (pass@1 from all n samples) and its standard error.

    The SE treats problems as the sampling unit (the spread of per-problem accuracies
    over sqrt(#problems)), the clustered error that accounts for samples of one problem
    being correlated.
    """
    acc = np.asarray(correct_fraction, dtype=float)
    if acc.size == 0:
        return float("nan"), float("nan")
    se = float(acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else float("nan")
    return float(acc.mean()), se


# ---------------------------------------------------------------------------- the registry
#
# One record per metric says everything the rest of m1eval needs to know about it: the
# report loops over the registry for its rows, the intervals for their per-problem values,
# the figures and budget tables for their labels. Adding a metric is one ``register_metric``
# call (docs/extending.md); nothing else names metrics one by one.

# One problem's samples -> its expected value at every k = 1..n (index k-1).
# (clusters, correct, scores or None, *, draws, seed); ``draws``/``seed`` serve Monte Carlo metrics.
ProblemCurve = Callable[..., np.ndarray]
# Every problem at once -> (problems, len(ks)): a faster path with the same numbers as ``curve``.
ManyCurves = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Metric:
    """A test-time scaling metric: its name, how tables and figures call it, how to compute it per problem."""

    name: str  # the key in CSV, JSON and on the command line: "pass", "maj", ...
    label: str  # in tables and figure axes: "pass@k"
    curve: ProblemCurve
    needs_scores: bool = False  # uses per-sample verifier scores (Completion.metrics["score"]); skipped without them
    fixed_set: bool = (
        False  # has an interval for new samples of the same problems (m1eval.analysis.intervals, target "fixed")
    )
    curves: bool = False  # exact for every k and needs only grades: priced by m1eval budget, drawn by m1eval plot
    many: ManyCurves | None = None  # fast path for the intervals: every problem at ks at once

    def label_at(self, k: int) -> str:
        """The label at one k: "pass@4", "best-of-4"."""
        return f"{self.label.replace('@k', '')}@{k}"


REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add a metric to the registry (a name may be registered once); returns it."""
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered already")
    REGISTRY[metric.name] = metric
    return metric


def metric_info(name: str) -> Metric:
    """The registered metric called ``name``; the error lists the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose from {tuple(REGISTRY)}") from None


def metric_names(*, scores: bool = True, fixed_set: bool = False, curves: bool = False) -> list[str]:
    """Registered metric names, in registration order: those a run with(out) ``scores`` supports,
    only those with a fixed-set interval, or only the priced/drawn curves."""
    return [
        m.name
        for m in REGISTRY.values()
        if (scores or not m.needs_scores) and (m.fixed_set or not fixed_set) and (m.curves or not curves)
    ]


def _pass_one(clusters, correct, scores, *, draws: int = 0, seed: int = 0) -> np.ndarray:
    n = len(correct)
    return pass_curve(n, np.array([int(np.sum(correct))]), np.arange(1, n + 1))[0]


def _pass_many(clusters, correct, scores, ks: np.ndarray, *, draws: int = 0, seed: int = 0) -> np.ndarray:
    """pass@k of every problem, one table lookup per sample count."""
    out = np.empty((len(correct), len(ks)))
    sizes = np.array([len(c) for c in correct], dtype=np.int64)
    hits = np.array([c.sum() for c in correct])
    for size in np.unique(sizes):
        rows = sizes == size
        out[rows] = pass_curve(int(size), hits[rows], ks)
    return out


def _majority_one(clusters, correct, scores, *, draws: int = 0, seed: int = 0) -> np.ndarray:
    return majority_curve(clusters, correct)


@lru_cache(maxsize=2048)
def _profile_curve(abstain: int, sizes: bytes, weights: bytes) -> np.ndarray:
    """``majority_curve_from_counts`` of one vote profile, kept across calls: a report, a figure and a
    budget of the same run ask for the same profiles. Keyed by the classes in their given order
    (the sum over classes depends on it in the last bit), so a result never depends on what was
    asked before."""
    curve = majority_curve_from_counts(np.frombuffer(sizes, dtype=np.int64), np.frombuffer(weights), abstain)
    curve.setflags(write=False)
    return curve


def _majority_many(clusters, correct, scores, ks: np.ndarray, *, draws: int = 0, seed: int = 0) -> np.ndarray:
    """Exact maj curves, computed once per vote profile: easy and hard problems repeat profiles a lot.

    Within one call a profile's first problem (its classes in that problem's order) gives the
    curve of every problem with the same profile in any class order."""
    seen: dict[tuple, np.ndarray] = {}
    rows = []
    for cl, co in zip(clusters, correct):
        sizes, weights, abstain, _ = _classes(cl, co)
        order = np.lexsort((weights, sizes))
        key = (abstain, sizes[order].tobytes(), weights[order].tobytes())
        curve = seen.get(key)
        if curve is None:
            curve = seen[key] = _profile_curve(
                abstain, sizes.astype(np.int64).tobytes(), weights.astype(float).tobytes()
            )
        rows.append(curve[ks - 1])
    return np.stack(rows)


def _majority_first_one(clusters, correct, scores, *, draws: int = 0, seed: int = 0) -> np.ndarray:
    return majority_first_curve(clusters, correct)


def _best_one(clusters, correct, scores, *, draws: int = 0, seed: int = 0) -> np.ndarray:
    return best_of_curve(correct, scores)


def _weighted_majority_one(clusters, correct, scores, *, draws: int = 200, seed: int = 0) -> np.ndarray:
    return weighted_majority_curve(clusters, correct, np.clip(scores, 0, None), draws=draws, seed=seed)


def _weighted_majority_many(
    clusters, correct, scores, ks: np.ndarray, *, draws: int = 200, seed: int = 0
) -> np.ndarray:
    """Every problem's weighted vote at ``ks``, with the numbers of ``_weighted_majority_one`` there
    (problem i seeded ``seed + i``, as ``per_problem`` seeds it). Winners are found at ``ks`` alone
    (a report asks for 7 of 64 k), except in problems with a partly right class, whose shares are
    computed at every k (``vote_draws.vote_shares`` says why)."""
    out = np.zeros((len(correct), len(ks)))
    for i, (cl, co, sc) in enumerate(zip(clusters, correct, scores)):
        ballot = _weighted_ballot("wmaj", cl, co, np.clip(np.asarray(sc, dtype=float), 0, None))
        if ballot is None:  # nobody votes: 0 at every k
            continue
        if ballot.consistent:
            out[i] = _ballot_shares(ballot, draws, seed + i, ks - 1)
        else:
            out[i] = _ballot_shares(ballot, draws, seed + i, np.arange(len(co)))[ks - 1]
    return out


register_metric(Metric("pass", "pass@k", _pass_one, fixed_set=True, curves=True, many=_pass_many))
register_metric(Metric("maj", "maj@k", _majority_one, curves=True, many=_majority_many))
register_metric(Metric("maj_first", "maj@k (first k)", _majority_first_one))
register_metric(Metric("best", "best-of-k", _best_one, needs_scores=True))
register_metric(
    Metric("wmaj", "weighted maj@k", _weighted_majority_one, needs_scores=True, many=_weighted_majority_many)
)
