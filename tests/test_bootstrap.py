"""Two-level bootstrap intervals and paired comparisons: calibration, pairing, errors."""

from __future__ import annotations

import numpy as np
import pytest

from m1eval import bootstrap as B
from m1eval import metrics as M


def make_set(rates, n: int, seed: int, wrong_classes: int = 3, prefix: str = "p") -> B.ProblemSet:
    rng = np.random.default_rng(seed)
    ids, clusters, correct, scores = [], [], [], []
    for i, rate in enumerate(rates):
        ok = rng.random(n) < rate
        cl = np.where(ok, 0, 1 + rng.integers(0, wrong_classes, size=n))
        cl[(~ok) & (rng.random(n) < 0.1)] = -1
        ids.append(f"{prefix}{i}")
        clusters.append(cl)
        correct.append(ok)
        scores.append(np.clip(rng.normal(np.where(ok, 0.7, 0.4), 0.2), 0, 1))
    return B.ProblemSet(ids, clusters, correct, scores)


def test_per_problem_matches_metric_functions():
    problems = make_set([0.2, 0.5, 0.9], n=8, seed=0)
    ks = [1, 2, 8]
    maj = B.per_problem(problems, ks, "maj")
    pas = B.per_problem(problems, ks, "pass")
    best = B.per_problem(problems, ks, "best")
    for i in range(3):
        cl = [None if c < 0 else int(c) for c in problems.clusters[i]]
        for j, k in enumerate(ks):
            assert maj[i, j] == pytest.approx(M.majority_at_k(cl, problems.correct[i], k))
            assert pas[i, j] == pytest.approx(M.pass_at_k(8, int(problems.correct[i].sum()), k))
            assert best[i, j] == pytest.approx(M.best_of_k(problems.correct[i], problems.scores[i], k))


def test_interval_brackets_point_and_is_reproducible():
    problems = make_set(np.linspace(0.05, 0.95, 40), n=16, seed=1)
    for metric in ("pass", "maj", "maj_first", "best", "wmaj"):
        a = B.bootstrap_curve(problems, [1, 4, 16], metric, resamples=200, seed=7)
        b = B.bootstrap_curve(problems, [1, 4, 16], metric, resamples=200, seed=7)
        np.testing.assert_array_equal(a.low, b.low)
        assert np.all(a.low <= a.high)
        assert np.all(a.se > 0)
        if metric in ("pass", "best"):
            assert np.all((a.low <= a.point + 1e-9) & (a.point <= a.high + 1e-9)), metric
    c = B.bootstrap_curve(problems, [1], "pass", resamples=200, seed=8)
    assert c.low[0] != a.low[0] or c.high[0] != a.high[0]


def test_single_problem_interval_comes_from_the_inner_level():
    """With one problem the outer level is constant: the whole spread is sample resampling."""
    problems = B.ProblemSet(["only"], [np.array([0] * 10 + [1] * 10)], [np.array([True] * 10 + [False] * 10)])
    curve = B.bootstrap_curve(problems, [1], "pass", resamples=2000, seed=0)
    assert curve.se[0] == pytest.approx(np.sqrt(0.25 / 20), rel=0.1)
    maj = B.bootstrap_curve(problems, [1, 20], "maj", resamples=500, seed=0)
    assert maj.se[0] == pytest.approx(np.sqrt(0.25 / 20), rel=0.3)
    assert maj.se[1] > 0.2  # a 10-10 tie at k = n: resamples swing the vote either way


def test_pass1_interval_covers_truth_about_95_percent():
    """Calibration: problems drawn from a known population; count how often the CI covers its mean."""
    rng = np.random.default_rng(5)
    covered = 0
    trials = 60
    for t in range(trials):
        rates = rng.beta(2, 3, size=50)  # population mean pass@1 = 0.4
        problems = make_set(rates, n=8, seed=100 + t)
        curve = B.bootstrap_curve(problems, [1], "pass", resamples=400, seed=t)
        covered += curve.low[0] <= 0.4 <= curve.high[0]
    assert 0.85 <= covered / trials <= 1.0


def test_k_beyond_smallest_sample_count_is_an_error():
    problems = B.ProblemSet(["a", "b"], [np.zeros(4, int), np.zeros(3, int)], [np.ones(4, bool), np.ones(3, bool)])
    assert problems.n == 3
    with pytest.raises(ValueError, match="1..3"):
        B.bootstrap_curve(problems, [4], "pass", resamples=10)
    with pytest.raises(ValueError, match="scores"):
        B.per_problem(problems, [1], "best")
    assert B.available_metrics(problems) == ["pass", "maj", "maj_first"]


def test_paired_comparison_identical_runs():
    a = make_set(np.linspace(0.1, 0.9, 30), n=8, seed=2)
    result = B.paired_comparison(a, a, "pass", 1, resamples=300, seed=0)
    assert result.diff == 0.0
    assert result.p_value == 1.0
    assert result.low <= 0.0 <= result.high


def test_paired_comparison_detects_a_real_gap_and_matches_by_id():
    rates = np.linspace(0.1, 0.8, 40)
    better = make_set(rates + 0.2, n=8, seed=3)
    worse = make_set(rates, n=8, seed=4)
    # drop and reorder problems in the baseline: pairing must go by id
    keep = [i for i in range(40) if i % 5][::-1]
    worse = worse.subset([worse.ids[i] for i in keep])
    for metric, k in (("pass", 1), ("maj", 8)):
        result = B.paired_comparison(better, worse, metric, k, resamples=500, seed=1)
        assert result.n_problems == len(keep)
        assert len(result.only_a) == 40 - len(keep) and not result.only_b
        expected = B.per_problem(better.subset(result_ids := [better.ids[i] for i in keep]), [k], metric)[:, 0].mean()
        assert result.value_a == pytest.approx(expected)
        assert result_ids
        assert result.diff > 0.1
        assert result.low > 0
        assert result.p_value < 0.01


def test_paired_comparison_needs_shared_problems():
    a = make_set([0.5], n=4, seed=0, prefix="a")
    b = make_set([0.5], n=4, seed=0, prefix="b")
    with pytest.raises(ValueError, match="share no problem"):
        B.paired_comparison(a, b)
