"""Estimators against brute-force enumeration of every k-subset, plus edge cases."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m1eval.analysis import metrics as M

# ---------------------------------------------------------------------------- brute force


def brute_pass(n: int, c: int, k: int) -> Fraction:
    hits = sum(1 for s in itertools.combinations(range(n), k) if any(i < c for i in s))
    return Fraction(hits, math.comb(n, k))


def brute_majority(clusters, correct, k, scores=None) -> Fraction:
    """Average over all k-subsets; ties split evenly; a class is right with its members' mean correctness."""
    n = len(clusters)
    members: dict[int, list[int]] = {}
    for i, c in enumerate(clusters):
        if c is not None and (scores is None or not math.isnan(scores[i])):
            members.setdefault(c, []).append(i)
    weight = {c: Fraction(sum(bool(correct[i]) for i in idx), len(idx)) for c, idx in members.items()}
    total = Fraction(0)
    for subset in itertools.combinations(range(n), k):
        votes: dict[int, Fraction] = {}
        for i in subset:
            c = clusters[i]
            if c in members and i in members[c]:
                votes[c] = votes.get(c, Fraction(0)) + (1 if scores is None else Fraction(scores[i]))
        if not votes:
            continue
        top = max(votes.values())
        winners = [c for c, v in votes.items() if v == top]
        total += sum(weight[c] for c in winners) / len(winners)
    return total / math.comb(n, k)


def brute_best(correct, scores, k) -> Fraction:
    n = len(correct)
    total = Fraction(0)
    for subset in itertools.combinations(range(n), k):
        top = max(scores[i] for i in subset)
        tied = [i for i in subset if scores[i] == top]
        total += Fraction(sum(bool(correct[i]) for i in tied), len(tied))
    return total / math.comb(n, k)


@st.composite
def vote_cases(draw, max_n: int = 9, max_classes: int = 4):
    n = draw(st.integers(1, max_n))
    clusters = draw(st.lists(st.one_of(st.none(), st.integers(0, max_classes - 1)), min_size=n, max_size=n))
    right = draw(st.integers(0, max_classes))  # class max_classes = no class is right
    correct = [c == right for c in clusters]
    k = draw(st.integers(1, n))
    return clusters, correct, k


# ---------------------------------------------------------------------------- pass@k


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_enumeration(case):
    n, c, k = case
    assert M.pass_at_k(n, c, k) == pytest.approx(float(brute_pass(n, c, k)), abs=1e-12)


def test_pass_at_k_edges_and_vectorised():
    assert M.pass_at_k(10, 0, 3) == 0.0
    assert M.pass_at_k(10, 10, 3) == 1.0
    assert M.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert M.pass_at_k(5, 2, 5) == 1.0  # k = n with any correct sample
    assert M.pass_at_k(10, 8, 3) == 1.0  # n - c < k
    out = M.pass_at_k(np.array([10, 20, 20]), np.array([1, 5, 0]), 2)
    expected = [1 - math.comb(9, 2) / math.comb(10, 2), 1 - math.comb(15, 2) / math.comb(20, 2), 0.0]
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_pass_at_k_stable_at_n_1024():
    for c, k in [(1, 1), (3, 512), (100, 7), (512, 1000), (1, 1024), (0, 1024)]:
        exact = 1 - Fraction(math.comb(1024 - c, k), math.comb(1024, k))
        assert M.pass_at_k(1024, c, k) == pytest.approx(float(exact), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("args", [(0, 0, 1), (5, 6, 1), (5, 2, 0), (5, 2, 6), (5, -1, 1), (5.5, 2, 1)])
def test_pass_at_k_rejects_bad_input(args):
    with pytest.raises(ValueError):
        M.pass_at_k(*args)


# ---------------------------------------------------------------------------- maj@k


@settings(max_examples=300, deadline=None)
@given(vote_cases())
def test_majority_matches_enumeration(case):
    clusters, correct, k = case
    assert M.majority_at_k(clusters, correct, k) == pytest.approx(
        float(brute_majority(clusters, correct, k)), abs=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(vote_cases(max_n=11, max_classes=3))
def test_majority_curve_every_k_matches_enumeration(case):
    clusters, correct, _ = case
    curve = M.majority_curve(clusters, correct)
    expected = [float(brute_majority(clusters, correct, k)) for k in range(1, len(clusters) + 1)]
    np.testing.assert_allclose(curve, expected, atol=1e-12)


def test_majority_edge_cases():
    # all abstain: nobody votes, always wrong
    assert M.majority_at_k([None] * 5, [False] * 5, 3) == 0.0
    # one correct voter among abstainers: right iff it is drawn
    assert M.majority_at_k([None, None, 0, None], [False, False, True, False], 2) == pytest.approx(0.5)
    # k = n: plain majority of all samples
    assert M.majority_at_k([0, 0, 1, 1, 1], [True, True, False, False, False], 5) == 0.0
    # exact tie at k = n: coin flip
    assert M.majority_at_k([0, 0, 1, 1], [True, True, False, False], 4) == pytest.approx(0.5)
    # three-way tie
    assert M.majority_at_k([0, 1, 2], [True, False, False], 3) == pytest.approx(1 / 3)
    # c = 0 and c = n
    assert M.majority_at_k([1, 2, 2, None], [False] * 4, 2) == 0.0
    assert M.majority_at_k([0, 0, 0, 0], [True] * 4, 3) == 1.0
    # k = 1 equals the fraction of correct samples
    assert M.majority_at_k([0, 1, 0, None, 2], [True, False, True, False, False], 1) == pytest.approx(0.4)


def test_majority_inconsistent_cluster_uses_member_share():
    # a class graded right for one member and wrong for the other counts half
    assert M.majority_at_k([0, 0], [True, False], 2) == pytest.approx(0.5)


def test_majority_accepts_nan_and_pandas_na():
    import pandas as pd

    clusters = pd.array([0, None, 1, 0], dtype="Int64")
    assert M.majority_at_k(list(clusters), [True, False, False, True], 4) == 1.0
    assert M.majority_at_k([0.0, float("nan"), 1.0], [True, False, False], 3) == pytest.approx(0.5)


def test_majority_large_n_is_finite_and_sane():
    rng = np.random.default_rng(0)
    clusters = rng.choice([0, 1, 2, 3], size=1024, p=[0.4, 0.3, 0.2, 0.1]).tolist()
    curve = M.majority_curve(clusters, [c == 0 for c in clusters])
    assert np.all(np.isfinite(curve)) and np.all((curve >= 0) & (curve <= 1))
    assert curve[0] == pytest.approx(np.mean(np.array(clusters) == 0))
    assert curve[-1] == 1.0  # the plurality class is right and wins outright at k = n
    # Monte Carlo check at k = 31 (ties are rare enough to split evenly by hand)
    labels = np.array(clusters)
    subsets = np.argsort(rng.random((20000, 1024)), axis=1)[:, :31]
    counts = np.stack([(labels[subsets] == c).sum(axis=1) for c in range(4)], axis=1)
    top = counts.max(axis=1, keepdims=True)
    wins = (counts[:, 0:1] == top)[:, 0] / (counts == top).sum(axis=1)
    assert curve[30] == pytest.approx(wins.mean(), abs=0.01)


def test_majority_first_k():
    clusters = [1, 0, 0, 1, 1]
    correct = [c == 0 for c in clusters]
    assert M.majority_at_k_first(clusters, correct, 1) == 0.0
    assert M.majority_at_k_first(clusters, correct, 2) == 0.5  # tie 1-1
    assert M.majority_at_k_first(clusters, correct, 3) == 1.0
    assert M.majority_at_k_first(clusters, correct, 5) == 0.0
    assert M.majority_at_k_first([None, None], [False, False], 2) == 0.0


# ---------------------------------------------------------------------------- scored metrics


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.integers(0, 3), min_size=n, max_size=n),  # few values: many score ties
            st.integers(1, n),
        )
    )
)
def test_best_of_matches_enumeration(case):
    correct, scores, k = case
    assert M.best_of_k(correct, scores, k) == pytest.approx(float(brute_best(correct, scores, k)), abs=1e-12)


def test_best_of_nan_scores_rank_last():
    assert M.best_of_k([False, True], [float("nan"), 0.1], 2) == 1.0


@settings(max_examples=80, deadline=None)
@given(vote_cases(max_n=7), st.data())
def test_weighted_majority_exact_matches_enumeration(case, data):
    clusters, correct, k = case
    scores = data.draw(st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0]), min_size=len(clusters), max_size=len(clusters)))
    got = M.weighted_majority_at_k(clusters, correct, scores, k)
    assert got == pytest.approx(float(brute_majority(clusters, correct, k, scores)), abs=1e-12)


def test_weighted_majority_monte_carlo_close_to_exact():
    rng = np.random.default_rng(3)
    clusters = rng.integers(0, 4, size=24).tolist()
    correct = [c == 0 for c in clusters]
    scores = rng.random(24)
    exact = M.weighted_majority_at_k(clusters, correct, scores, 3)  # C(24,3)=2024 subsets: exact
    curve = M.weighted_majority_curve(clusters, correct, scores, draws=4000, seed=1)
    assert curve[2] == pytest.approx(exact, abs=0.03)
    with pytest.raises(ValueError):
        M.weighted_majority_at_k([0], [True], [-1.0], 1)
    with pytest.raises(ValueError, match="draws >= 1, got 0"):
        M.weighted_majority_curve(clusters, correct, scores, draws=0)


def test_equal_weights_reduce_to_plain_majority():
    clusters = [0, 1, 1, 2, 0, None, 1]
    correct = [c == 0 for c in clusters]
    for k in range(1, 8):
        w = M.weighted_majority_at_k(clusters, correct, [1.0] * 7, k)
        assert w == pytest.approx(M.majority_at_k(clusters, correct, k), abs=1e-12)


# ---------------------------------------------------------------------------- avg@n and grids


def test_avg_at_n_standard_error():
    mean, se = M.avg_at_n([0.0, 0.5, 1.0, 0.5])
    assert mean == 0.5
    assert se == pytest.approx(np.std([0, 0.5, 1, 0.5], ddof=1) / 2)


def test_k_grids():
    assert M.powers_of_two(64) == [1, 2, 4, 8, 16, 32, 64]
    assert M.powers_of_two(48) == [1, 2, 4, 8, 16, 32, 48]
    assert M.powers_of_two(1) == [1]
    assert M.k_grid(5, every_k=True) == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------------------- the metric registry


def test_registry_fast_paths_give_the_one_problem_curves():
    """A metric's ``many`` (the intervals' fast path) must give its ``curve`` for every problem
    (problem i seeded ``seed + i``, as ``per_problem`` seeds the one-problem curves)."""
    rng = np.random.default_rng(5)
    clusters = [rng.integers(-1, 3, size=n) for n in (4, 4, 6, 8)]
    correct = [cl == 0 for cl in clusters]
    scores = [np.where(rng.random(len(cl)) < 0.3, 0.0, rng.random(len(cl))) for cl in clusters]
    ks = np.array([1, 2, 4])
    fast = [m for m in M.REGISTRY.values() if m.many is not None]
    assert {m.name for m in fast} == {"pass", "maj", "wmaj"}
    for metric in fast:
        many = metric.many(clusters, correct, scores, ks, draws=50, seed=3)
        one = np.stack(
            [
                metric.curve(cl, co, sc, draws=50, seed=3 + i)[ks - 1]
                for i, (cl, co, sc) in enumerate(zip(clusters, correct, scores))
            ]
        )
        assert many == pytest.approx(one, abs=1e-12), metric.name


# ---------------------------------------------------------------------------- the weighted vote's fast path


def literal_weighted_vote(clusters, correct, scores, draws: int, seed: int) -> np.ndarray:
    """Reference for the Monte Carlo weighted vote, one vote at a time: in each of the seeded
    orders, the first k samples add up their scores per class (in order), the largest total
    wins and tied classes split the vote; a class is right with its members' share of correct
    samples. Returns the mean over the orders for k = 1..n."""
    n = len(correct)
    voters = [i for i in range(n) if clusters[i] is not None and not math.isnan(scores[i])]
    members: dict[int, list[int]] = {}
    for i in voters:
        members.setdefault(int(clusters[i]), []).append(i)
    weight = {c: sum(float(correct[i]) for i in idx) / len(idx) for c, idx in members.items()}
    if not voters:
        return np.zeros(n)
    orders = np.argsort(np.random.default_rng(seed).random((draws, n)), axis=1)
    out = np.zeros((draws, n))
    for d, order in enumerate(orders):
        totals: dict[int, float] = {}
        for k, i in enumerate(order):
            if i in voters:
                c = int(clusters[i])
                totals[c] = totals.get(c, 0.0) + float(scores[i])
            if totals:
                top = max(totals.values())
                winners = [c for c, t in totals.items() if t == top]
                out[d, k] = sum(weight[c] for c in winners) / len(winners)
    return out.mean(axis=0)


@st.composite
def weighted_problems(draw, consistent: bool):
    """A few problems: answers in up to 5 classes (None: no answer), scores with many exact ties
    (zeros, repeated values) and NaNs; correct by class (consistent) or per sample."""
    problems = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(1, 12))
        clusters = draw(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n, max_size=n))
        scores = draw(
            st.lists(st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 1 / 3, 2.5, float("nan")]), min_size=n, max_size=n)
        )
        if consistent:
            right = draw(st.integers(0, 5))
            correct = [c == right for c in clusters]
        else:
            correct = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        problems.append((clusters, correct, scores))
    return problems


@settings(max_examples=60, deadline=None)
@given(weighted_problems(consistent=True), st.integers(1, 30), st.integers(0, 50))
def test_weighted_vote_fast_path_is_the_literal_vote_exactly(problems, draws, seed):
    """Classes all right or all wrong (a consistent grader): every share is a sum of 0s and 1s, so the
    batched tensors and the literal count agree to the bit, ties included."""
    _check_weighted_fast_path(problems, draws, seed, exact=True)


@settings(max_examples=40, deadline=None)
@given(weighted_problems(consistent=False), st.integers(1, 30), st.integers(0, 50))
def test_weighted_vote_fast_path_is_the_literal_vote_with_mixed_classes(problems, draws, seed):
    _check_weighted_fast_path(problems, draws, seed, exact=False)


def _check_weighted_fast_path(problems, draws, seed, *, exact: bool) -> None:
    clusters = [np.array([-1 if c is None else c for c in cl]) for cl, _, _ in problems]
    correct = [np.array(co, dtype=bool) for _, co, _ in problems]
    scores = [np.array(sc, dtype=float) for _, _, sc in problems]
    n = min(len(c) for c in correct)
    ks = np.arange(1, n + 1)
    many = M._weighted_majority_many(clusters, correct, scores, ks, draws=draws, seed=seed)
    for i, (cl, co, sc) in enumerate(problems):
        want = literal_weighted_vote(cl, co, sc, draws, seed + i)
        one = M.weighted_majority_curve(cl, co, sc, draws=draws, seed=seed + i)
        if exact:
            assert np.array_equal(one, want) and np.array_equal(many[i], want[ks - 1]), i
        else:
            assert one == pytest.approx(want, abs=1e-12) and many[i] == pytest.approx(want[ks - 1], abs=1e-12), i


def test_weighted_vote_fast_path_gives_the_whole_curve_at_each_k():
    """The fast path decides the winners at the asked k alone: its numbers must be the whole curve's
    there, to the bit, for any choice of k (one k, a few, every one), with or without partly right
    classes, and a problem's numbers must not depend on the problems before it (seed + i)."""
    rng = np.random.default_rng(11)
    clusters = [rng.integers(-1, int(rng.integers(1, 6)), size=int(rng.choice([6, 9]))) for _ in range(14)]
    clusters[3] = np.full(9, -1)  # nobody answers: 0 at every k
    correct = [cl == 0 for cl in clusters[:7]] + [rng.random(len(cl)) < 0.5 for cl in clusters[7:]]
    scores = [np.where(rng.random(len(cl)) < 0.4, 0.0, rng.integers(1, 4, size=len(cl)) / 3) for cl in clusters]
    whole = [
        M._weighted_majority_one(cl, co, sc, draws=40, seed=2 + i)
        for i, (cl, co, sc) in enumerate(zip(clusters, correct, scores))
    ]
    for ks in ([1], [6], [1, 2, 4], [2, 3, 5, 6], list(range(1, 7))):
        ks = np.array(ks)
        fast = M._weighted_majority_many(clusters, correct, scores, ks, draws=40, seed=2)
        assert np.array_equal(fast, np.stack([w[ks - 1] for w in whole])), ks
    assert np.array_equal(whole[3], np.zeros(9))
    tail = M._weighted_majority_many(clusters[5:], correct[5:], scores[5:], np.arange(1, 7), draws=40, seed=7)
    assert np.array_equal(tail, np.stack([w[:6] for w in whole[5:]]))  # problem 5 + j seeded 2 + 5 + j = 7 + j


def test_majority_fast_path_does_not_depend_on_what_was_asked_before():
    """The maj fast path keeps profile curves across calls; a curve must still be the one a fresh
    process computes (the sum over classes depends on their order in the last bit)."""
    # one profile (classes of 2, 3, 2 and 2 samples, 2, 2, 1 and 1 right, one abstention) in two class
    # orders whose curves differ in the last bit
    clusters = [np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, -1]), np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, -1])]
    correct = [
        np.array([1, 1, 1, 1, 0, 1, 0, 1, 0, 0], dtype=bool),
        np.array([1, 0, 1, 0, 1, 1, 1, 1, 0, 0], dtype=bool),
    ]
    ks = np.arange(1, 11)
    M._profile_curve.cache_clear()
    fresh = [M._majority_many([cl], [co], None, ks) for cl, co in zip(clusters, correct)]
    M._majority_many(clusters[::-1], correct[::-1], None, ks)  # the other order is seen first now
    again = [M._majority_many([cl], [co], None, ks) for cl, co in zip(clusters, correct)]
    assert not np.array_equal(fresh[0], fresh[1])  # the premise: the order shows
    assert all(np.array_equal(a, b) for a, b in zip(fresh, again))
    for got, cl, co in zip(fresh, clusters, correct):
        assert got[0] == pytest.approx(M.majority_curve(cl, co), abs=1e-12)


def test_registry_names_labels_and_lookups():
    assert list(M.REGISTRY) == ["pass", "maj", "maj_first", "best", "wmaj"]
    assert M.metric_names(scores=False) == ["pass", "maj", "maj_first"]
    assert M.metric_names(fixed_set=True) == ["pass"] and M.metric_names(curves=True) == ["pass", "maj"]
    assert M.metric_info("pass").label_at(1) == "pass@1" and M.metric_info("maj").label_at(8) == "maj@8"
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        M.metric_info("nope")
    with pytest.raises(ValueError, match="registered already"):
        M.register_metric(M.REGISTRY["pass"])


def test_a_registered_metric_reaches_bootstrap_and_report(monkeypatch, tmp_path):
    """One register_metric call is all a new metric needs: the report shows it with its label."""
    from m1eval.analysis import intervals as B
    from m1eval.analysis import report as R
    from m1eval.rundir.rundata import load_run
    from m1eval.rundir.synthetic import make_synthetic_run

    def first_right(clusters, correct, scores, *, draws=0, seed=0):
        return np.full(len(correct), float(correct[0]))

    monkeypatch.setitem(M.REGISTRY, "first", M.Metric("first", "first-sample@k", first_right))
    run = load_run(make_synthetic_run(tmp_path, n_problems=6, n_samples=4, seed=4))
    problems = B.ProblemSet.from_frame(run.frame)
    values = B.per_problem(problems, [1, 4], "first")
    assert values[:, 0].tolist() == [float(c[0]) for c in problems.correct]
    summary = R.summarize_run(run, sign_flips=20)
    assert "first" in summary.curves
    assert "first-sample@k" in R.render_report([summary], fmt="markdown")
