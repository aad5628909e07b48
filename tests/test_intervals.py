"""Confidence intervals and paired comparisons: coverage at every k, targets, degenerate cases, pairing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from m1eval.analysis import intervals as B
from m1eval.analysis import metrics as M


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
        a = B.interval_curve(problems, [1, 4, 16], metric, sign_flips=200, seed=7)
        b = B.interval_curve(problems, [1, 4, 16], metric, sign_flips=200, seed=7)
        np.testing.assert_array_equal(a.low, b.low)
        assert a.target == "population"
        assert np.all(a.low < a.high)
        assert np.all(a.se > 0)
        assert np.all((a.low <= a.point) & (a.point <= a.high)), metric
    none = B.interval_curve(problems, [1], "pass", sign_flips=0)
    assert np.isnan(none.low[0]) and np.isfinite(none.point[0])


def test_interval_curve_takes_the_values_it_would_compute():
    problems = make_set(np.linspace(0.1, 0.9, 12), n=8, seed=4)
    for metric in ("maj", "wmaj"):
        values = B.per_problem(problems, [1, 4], metric)
        own = B.interval_curve(problems, [1, 4], metric, sign_flips=10)
        given_values = B.interval_curve(problems, [1, 4], metric, sign_flips=10, values=values)
        for name in ("point", "low", "high", "se"):
            np.testing.assert_array_equal(getattr(given_values, name), getattr(own, name))
    with pytest.raises(ValueError, match=r"values: expected shape \(12, 2\)"):
        B.interval_curve(problems, [1, 4], "maj", values=values[:, :1])


def test_single_problem_population_vs_fixed_set():
    """One problem says almost nothing about new problems, but a fair amount about itself."""
    problems = B.ProblemSet(["only"], [np.array([0] * 10 + [1] * 10)], [np.array([True] * 10 + [False] * 10)])
    pop = B.interval_curve(problems, [1], "pass")
    assert pop.high[0] - pop.low[0] > 0.9
    fixed = B.interval_curve(problems, [1], "pass", target="fixed")
    assert fixed.target == "fixed"
    # Jeffreys-posterior sampling variance of c/n at c = 10 of 20: close to 0.25 / 20.
    assert fixed.se[0] == pytest.approx(np.sqrt(0.25 / 20), rel=0.1)
    assert fixed.low[0] < 0.5 < fixed.high[0]
    with pytest.raises(ValueError, match="fixed-set"):
        B.interval_curve(problems, [1], "maj", target="fixed")
    with pytest.raises(ValueError, match="target"):
        B.interval_curve(problems, [1], "pass", target="sample")


def test_pass1_interval_covers_truth_about_95_percent():
    """Calibration: problems drawn from a known population; count how often the CI covers its mean."""
    rng = np.random.default_rng(5)
    covered = 0
    trials = 60
    for t in range(trials):
        rates = rng.beta(2, 3, size=50)  # population mean pass@1 = 0.4
        problems = make_set(rates, n=8, seed=100 + t)
        curve = B.interval_curve(problems, [1], "pass", sign_flips=400, seed=t)
        covered += curve.low[0] <= 0.4 <= curve.high[0]
    assert 0.85 <= covered / trials <= 1.0


def hard_population_rates(rng: np.random.Generator, size: int) -> np.ndarray:
    """AIME-like: a quarter of the problems unsolvable, the rest Beta(0.5, 2)."""
    return np.where(rng.random(size) < 0.25, 0.0, rng.beta(0.5, 2.0, size))


def test_pass_at_n_covers_with_many_problems():
    """Issue 17: at P = 500, n = 8 the two-level bootstrap covered pass@8 18 % of the time.

    The truth is the population mean of 1 - (1 - q)^k, computed from a large draw of q.
    """
    rng = np.random.default_rng(11)
    big = hard_population_rates(rng, 400_000)
    ks = [1, 4, 8]
    truth = np.array([np.mean(1 - (1 - big) ** k) for k in ks])
    trials, covered, inside = 40, np.zeros(3), 0
    for t in range(trials):
        rates = hard_population_rates(rng, 500)
        hits = rng.binomial(8, rates)
        problems = B.ProblemSet(
            [f"p{i}" for i in range(500)], [np.zeros(8, int)] * 500, [np.arange(8) < h for h in hits]
        )
        curve = B.interval_curve(problems, ks, "pass", seed=t)
        covered += (curve.low <= truth) & (truth <= curve.high)
        inside += np.all((curve.low <= curve.point) & (curve.point <= curve.high))
    assert inside == trials
    assert np.all(covered / trials >= 0.85), covered / trials


def test_estimate_inside_its_interval_at_k_equal_n():
    """The old inner level pulled pass@n and maj@n replicates below the estimate."""
    problems = make_set(np.random.default_rng(3).beta(0.6, 1.5, size=500), n=8, seed=9)
    for metric in ("pass", "maj"):
        curve = B.interval_curve(problems, [8], metric, sign_flips=300, seed=0)
        assert curve.low[0] <= curve.point[0] <= curve.high[0], metric
        # and not at its edge: the interval is centred on the estimate within a third of its width
        middle = (curve.low[0] + curve.high[0]) / 2
        assert abs(middle - curve.point[0]) < (curve.high[0] - curve.low[0]) / 6, metric


def test_every_problem_solved_still_has_an_interval():
    """All 30 problems solved at k = n: the truth may be below 1; [1, 1] would claim it is not."""
    problems = B.ProblemSet(
        [f"p{i}" for i in range(30)], [np.zeros(8, int)] * 30, [np.r_[True, np.zeros(7, bool)]] * 30
    )
    curve = B.interval_curve(problems, [1, 8], "pass")
    assert curve.point[1] == 1.0 and curve.high[1] == 1.0
    assert 0.85 < curve.low[1] < 0.95  # Clopper-Pearson-like bound for 30 of 30: about 0.88
    fixed = B.interval_curve(problems, [8], "pass", target="fixed")
    assert fixed.low[0] < 1.0 == fixed.high[0]


def test_fixed_set_interval_covers_the_mean_over_these_problems():
    rng = np.random.default_rng(21)
    rates = hard_population_rates(rng, 200)
    ks = np.array([1, 2, 8])
    truth = np.array([np.mean(1 - (1 - rates) ** k) for k in ks])
    trials, covered, narrower = 60, np.zeros(3), 0
    for _t in range(trials):
        hits = rng.binomial(8, rates)
        problems = B.ProblemSet(
            [f"p{i}" for i in range(200)], [np.zeros(8, int)] * 200, [np.arange(8) < h for h in hits]
        )
        fixed = B.interval_curve(problems, ks, "pass", target="fixed")
        pop = B.interval_curve(problems, ks, "pass")
        covered += (fixed.low <= truth) & (truth <= fixed.high)
        narrower += np.all(fixed.high - fixed.low < pop.high - pop.low)
    assert np.all(covered / trials >= 0.88), covered / trials
    assert narrower == trials


def test_posterior_variance_matches_numerical_integration():
    """E over q ~ Beta(c + 1/2, n - c + 1/2) of the exact Var(pass@k estimate | q), by quadrature."""
    n = 8
    grid = (np.arange(20000) + 0.5) / 20000
    counts = np.arange(n + 1)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in counts])
    pmf = np.exp(
        log_choose[None, :] + counts[None, :] * np.log(grid[:, None]) + (n - counts)[None, :] * np.log1p(-grid[:, None])
    )
    for k in (1, 3, 8):
        est = np.array([M.pass_at_k(n, c, k) for c in counts])
        var_q = pmf @ est**2 - (pmf @ est) ** 2
        for c in (0, 1, 4, 8):
            dens = grid ** (c - 0.5) * (1 - grid) ** (n - c - 0.5)
            expected = float(dens @ var_q / dens.sum())
            assert B._posterior_variance(n, k)[c] == pytest.approx(expected, rel=2e-2, abs=1e-6), (k, c)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
@settings(max_examples=200, deadline=None)
def test_score_interval_contains_the_mean(values, level):
    low, high, se = B.score_interval(np.array(values), level)
    mean = np.mean(values)
    assert 0 <= low[0] <= mean + 1e-12 and mean - 1e-12 <= high[0] <= 1
    assert se[0] >= 0


def test_score_interval_far_from_the_bounds_is_the_normal_one():
    values = np.random.default_rng(0).uniform(0.2, 0.8, size=2000)
    low, high, se = B.score_interval(values)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert se[0] == pytest.approx(values.std(ddof=1) / np.sqrt(len(values)))
    assert (high[0] - low[0]) / 2 == pytest.approx(half, rel=0.05)


def test_k_beyond_smallest_sample_count_is_an_error():
    problems = B.ProblemSet(["a", "b"], [np.zeros(4, int), np.zeros(3, int)], [np.ones(4, bool), np.ones(3, bool)])
    assert problems.n == 3
    with pytest.raises(ValueError, match="1..3"):
        B.interval_curve(problems, [4], "pass", sign_flips=10)
    with pytest.raises(ValueError, match="scores"):
        B.per_problem(problems, [1], "best")
    assert B.available_metrics(problems) == ["pass", "maj", "maj_first"]


def test_paired_comparison_identical_runs():
    a = make_set(np.linspace(0.1, 0.9, 30), n=8, seed=2)
    result = B.paired_comparison(a, a, "pass", 1, sign_flips=300, seed=0)
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
        result = B.paired_comparison(better, worse, metric, k, sign_flips=500, seed=1)
        assert result.n_problems == len(keep)
        assert len(result.only_a) == 40 - len(keep) and not result.only_b
        expected = B.per_problem(better.subset(result_ids := [better.ids[i] for i in keep]), [k], metric)[:, 0].mean()
        assert result.value_a == pytest.approx(expected)
        assert result_ids
        assert result.diff > 0.1
        assert result.low > 0
        assert result.p_value < 0.01


def test_paired_interval_when_both_runs_solve_everything():
    """Every difference 0: the bootstrap said [0, 0]; the true difference need not be 0."""
    a = B.ProblemSet([f"p{i}" for i in range(30)], [np.zeros(8, int)] * 30, [np.ones(8, bool)] * 30)
    result = B.paired_comparison(a, a, "pass", 8)
    assert result.low < 0 < result.high
    assert result.high - result.low > 0.1
    assert result.target == "population"


def test_paired_interval_matches_normal_one_in_the_middle():
    rng = np.random.default_rng(4)
    va = rng.uniform(0.2, 0.8, 3000)
    vb = np.clip(va - 0.05 + rng.normal(0, 0.1, 3000), 0, 1)
    low, high = B.paired_interval(va, vb)
    d = va - vb
    assert low < d.mean() < high
    assert (high - low) / 2 == pytest.approx(1.96 * d.std(ddof=1) / np.sqrt(len(d)), rel=0.08)


def test_paired_comparison_needs_shared_problems():
    a = make_set([0.5], n=4, seed=0, prefix="a")
    b = make_set([0.5], n=4, seed=0, prefix="b")
    with pytest.raises(ValueError, match="share no problem"):
        B.paired_comparison(a, b)


def test_score_interval_small_p_guard_for_values_piled_at_one():
    """75 % of problems at 1, most others in (0.9, 1), a rare 3.5 % at 0 that a third of 30-problem
    samples miss (like easy maj@32): plain z^2 pseudo-problems covered 76 %, z^2 (1 + s) 95 %."""
    rng = np.random.default_rng(17)
    reps, size = 4000, 30
    kind = rng.random((size, reps))
    values = np.where(kind < 0.75, 1.0, np.where(kind < 0.965, rng.uniform(0.9, 1.0, (size, reps)), 0.0))
    truth = 0.75 + 0.215 * 0.95
    low, high, _ = B.score_interval(values)  # one column per simulated benchmark
    covered = (low <= truth) & (truth <= high)
    assert 0.93 <= covered.mean() <= 0.99
