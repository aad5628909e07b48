"""Budget arithmetic on hand-computed cases: prices, affordable k, verdicts, crossovers.

Two fake models on the same two problems, n = 4 samples each, 50 tokens per sample:

- "fast": 100 tokens/s -> one round (1 sample of both problems, 100 tokens) costs 1 s;
  problem 0 has 1 correct sample of 4, problem 1 none.
  pass@1 = (1/4 + 0)/2 = 0.125, pass@2 = (1 - C(3,2)/C(4,2))/2 = 0.25,
  pass@3 = (1 - C(3,3)/C(4,3))/2 = 0.375, pass@4 = 0.5.
- "slow": 25 tokens/s -> one round costs 4 s; problem 0: 4 of 4, problem 1: 2 of 4.
  pass@1 = (1 + 1/2)/2 = 0.75, pass@2 = (1 + 5/6)/2 = 11/12, pass@3 = pass@4 = 1.

Prices (every k, not only powers of two): fast 1, 2, 3, 4 s; slow 4, 8, 12, 16 s. Under
4 s the slow model cannot afford one sample of every problem, so fast leads; from 4 s on,
slow (0.75) beats fast (0.5).
"""

from __future__ import annotations

import pytest
from helpers.budget_runs import write_run

from m1eval.analysis.budget import (
    Clock,
    clock_from_batches,
    clock_from_profile,
    compare_at_budget,
    crossovers,
    default_budgets,
    parallel_curve,
)
from m1eval.analysis.curves import CurveError, metric_curve, problem_values
from m1eval.analysis.metrics import majority_at_k
from m1eval.rundir.rundata import load_run
from m1eval.throughput.profile import Measurement, ThroughputProfile

FAST = [[True, False, False, False], [False, False, False, False]]
SLOW = [[True, True, True, True], [True, True, False, False]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget")
    return load_run(write_run(root, "fast", FAST)), load_run(write_run(root, "slow", SLOW, batch_seconds=8.0))


@pytest.fixture(scope="module")
def curves(runs):
    fast, slow = runs
    return (
        parallel_curve(fast, Clock(100.0, "fast profile"), "pass", sign_flips=200),
        parallel_curve(slow, Clock(25.0, "slow profile"), "pass", sign_flips=200),
    )


def test_prices_and_accuracies_match_hand_computation(curves):
    fast, slow = curves
    assert fast.ks == [1, 2, 3, 4] and slow.ks == [1, 2, 3, 4]
    assert fast.seconds.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert slow.seconds.tolist() == pytest.approx([4.0, 8.0, 12.0, 16.0])
    assert fast.accuracy.tolist() == pytest.approx([0.125, 0.25, 0.375, 0.5])
    assert slow.accuracy.tolist() == pytest.approx([0.75, 11 / 12, 1.0, 1.0])
    assert all(lo <= a <= hi for lo, a, hi in zip(fast.low, fast.accuracy, fast.high))
    assert fast.tokens_per_sample == pytest.approx(50.0)


def test_affordable_k_is_a_step_function(curves):
    fast, slow = curves
    assert [fast.affordable_k(b) for b in (0.5, 1.0, 1.99, 2.0, 3.9, 4.0, 100.0)] == [0, 1, 1, 2, 3, 4, 4]
    assert [slow.affordable_k(b) for b in (3.99, 4.0, 11.9, 12.0, 15.9, 16.0)] == [0, 1, 2, 3, 3, 4]
    assert slow.accuracy_at(3.0) == 0.0 and slow.accuracy_at(8.0) == pytest.approx(11 / 12)
    assert fast.saturated(5.0) and not fast.saturated(4.0)


def test_verdict_below_the_crossover_fast_model_wins(curves):
    verdict = compare_at_budget(curves, 2.0, sign_flips=200)
    assert verdict.winner == "fast"
    assert [(m.label, m.k) for m in verdict.models] == [("fast", 2), ("slow", 0)]
    assert verdict.difference == pytest.approx(0.25)
    assert "slow: one sample of every problem costs 4 s; it scores 0 below that" in verdict.notes
    assert verdict.leaders == ["fast"] and verdict.runner_up == "slow" and not verdict.tie


def test_verdict_above_the_crossover_slow_model_wins_with_interval(curves):
    verdict = compare_at_budget(curves, 4.0, sign_flips=500)
    assert verdict.winner == "slow"
    assert {m.label: m.k for m in verdict.models} == {"fast": 4, "slow": 1}
    # Per-problem differences (slow k=1 minus fast k=4): p0: 1 - 1 = 0, p1: 0.5 - 0 = 0.5.
    assert verdict.difference == pytest.approx(0.25)
    assert verdict.diff_low <= 0.25 <= verdict.diff_high
    # Two problems are no evidence either way: the paired score interval (for new problems)
    # reaches below 0 (the old percentile bootstrap stayed within [0, 0.5], the support of
    # two resampled differences) and stays within [-1, 1].
    assert -1.0 <= verdict.diff_low < 0.0 < verdict.diff_high <= 1.0
    # Sign flips of the differences (0, 0.5) always give |mean| = 0.25: no evidence, p = 1.
    assert verdict.p_value == pytest.approx(1.0)


def test_crossover_point(curves):
    fast, slow = curves
    assert crossovers(fast, slow) == [(4.0, "slow")]
    assert crossovers(slow, fast) == [(4.0, "slow")]


def test_same_samples_faster_clock_never_loses(runs):
    """The same run priced at 500 and at 25 tokens/s: the faster clock leads, or ties once both are saturated."""
    _, slow_run = runs
    same_a = parallel_curve(slow_run, Clock(500.0, "quick"), "pass", sign_flips=50, label="quick")
    same_b = parallel_curve(slow_run, Clock(25.0, "slow"), "pass", sign_flips=50, label="slow")
    # slow reaches pass@3 = 1.0 at 12 s, where quick has held 1.0 since 0.6 s: a tie from then on.
    assert crossovers(same_a, same_b) == [(12.0, None)]
    verdict = compare_at_budget([same_a, same_b], 8.0, sign_flips=50)
    # quick: round 0.2 s -> k=4 (1.0); slow: round 4 s -> k=2 (11/12).
    assert verdict.winner == "quick" and verdict.difference == pytest.approx(1 - 11 / 12)


def test_majority_values_come_from_the_metrics_estimator(runs):
    _, slow = runs
    table = problem_values(slow, "maj", [1, 2, 3])
    assert table.loc["p1", 2] == pytest.approx(majority_at_k([0, 0, 1, 1], [True, True, False, False], 2))
    assert table.loc["p0"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(CurveError, match="k must be in 1..4"):
        metric_curve(slow, "maj", ks=[8])


def test_a_metric_curve_computes_its_per_problem_values_once(runs, monkeypatch):
    """The point and the interval of ``metric_curve`` come from one ``per_problem`` call (they used to
    take one each), with the numbers of ``interval_curve`` computing its own."""
    import m1eval.analysis.curves as curves_module
    import m1eval.analysis.intervals as intervals_module
    from m1eval.analysis.intervals import interval_curve

    _, slow = runs
    calls: list[str] = []
    real = intervals_module.per_problem

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(intervals_module, "per_problem", counting)
    monkeypatch.setattr(curves_module, "per_problem", counting)
    curve = metric_curve(slow, "maj", ks=[1, 2, 4], sign_flips=50)
    assert calls == ["maj"]
    own = interval_curve(curves_module.problem_set(slow), [1, 2, 4], "maj", sign_flips=50)
    assert (curve.accuracy.tolist(), curve.low.tolist(), curve.high.tolist()) == (
        own.point.tolist(),
        own.low.tolist(),
        own.high.tolist(),
    )


def test_clock_from_run_batches(runs):
    _, slow = runs
    clock = clock_from_batches(slow)  # two batches of 8 s, 4 x 50 tokens each -> 400 / 16
    assert clock.tokens_per_second == pytest.approx(25.0)
    assert clock.batch_size == pytest.approx(4.0)


def _profile():
    return ThroughputProfile(
        model="org/toy",
        engine="fake",
        measurements=[
            Measurement("batch", 1, 8, 64, wall_seconds=0.64, generated_tokens=64),  # 100 tok/s
            Measurement("batch", 4, 8, 64, wall_seconds=256 / 300, generated_tokens=256),  # 300 tok/s
            Measurement("batch", 16, 8, 64, status="oom", error="no memory"),
            Measurement("length", 4, 8, 100, wall_seconds=1.0, generated_tokens=400),
            Measurement("length", 4, 8, 200, wall_seconds=3.0, generated_tokens=800),
        ],
    )


def test_profile_interpolation_and_clock():
    prof = _profile()
    assert prof.throughput_at(2) == pytest.approx(200.0)  # halfway in log2(batch)
    assert prof.throughput_at(64) == pytest.approx(300.0)  # clamped, never extrapolated
    assert prof.peak.batch_size == 4 and prof.oom_batch_size == 16
    assert prof.seconds_for_length(150) == pytest.approx(2.0)
    assert prof.seconds_for_length(300) == pytest.approx(5.0)  # last slope continues
    assert prof.seconds_for_length(50) == pytest.approx(0.5)
    clock = clock_from_profile(prof)
    assert clock.batch_size == 4 and clock.tokens_per_second == pytest.approx(300.0)
    assert clock_from_profile(prof, batch_size=1).seconds(200) == pytest.approx(2.0)


def test_default_budgets_span_all_prices(curves):
    budgets = default_budgets(curves, count=5)
    assert budgets[0] == pytest.approx(1.0) and budgets[-1] == pytest.approx(16.0)
    assert budgets == sorted(budgets)


def test_budget_cli_tables_and_csv(runs, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from m1eval.cli.app import app

    fast, slow = runs
    prof = ThroughputProfile(
        model="org/fast",
        engine="fake",
        display_name="fast",
        measurements=[Measurement("batch", 4, 8, 64, wall_seconds=2.56, generated_tokens=256)],  # 100 tok/s
    ).save(tmp_path / "fast.json")
    result = CliRunner().invoke(
        app,
        [
            "budget",
            str(fast.path),
            str(slow.path),
            "--profile",
            str(prof),
            "--metric",
            "pass",
            "--budget",
            "2",
            "--budget",
            "16",
            "--sign-flips",
            "200",
            "--out",
            str(tmp_path / "tables"),
        ],
    )
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    # fast priced by its profile (100 tok/s); slow by its own batches (25 tok/s).
    assert "profile fast (fake) at batch 4" in text and "measured batches of hand" in text
    assert "crossover: from 4 s on, slow is more accurate" in text
    verdicts = pd.read_csv(tmp_path / "tables" / "budget_verdicts.csv")
    assert verdicts["winner"].tolist() == ["fast", "slow"]
    assert verdicts["difference"].tolist() == pytest.approx([0.25, 0.5])  # 0.25 - 0; 1.0 - 0.5
    curves = pd.read_csv(tmp_path / "tables" / "budget_curves.csv")
    assert curves.loc[curves["model"] == "slow", "seconds"].tolist() == pytest.approx([4.0, 8.0, 12.0, 16.0])


def test_budget_cli_requires_matching_profile(runs, tmp_path):
    from typer.testing import CliRunner

    from m1eval.cli.app import app

    fast, _ = runs
    result = CliRunner().invoke(app, ["budget", str(fast.path), "--clock", "profile"])
    assert result.exit_code == 2 and "no throughput profile matches model 'fast'" in " ".join(result.output.split())


def test_length_aware_clock_uses_the_length_sweep():
    prof = _profile()
    # Batch sweep measured at 64 tokens. Length sweep (batch 4): 64 tokens take 0.64 s
    # (proportional below 100) -> 400 tok/s; 200 tokens take 3 s -> 266.7 tok/s.
    assert prof.length_factor(64) == pytest.approx(1.0)
    assert prof.length_factor(200) == pytest.approx(2 / 3)
    clock = clock_from_profile(prof, gen_len=200)  # peak batch 4: 300 tok/s x 2/3
    assert clock.tokens_per_second == pytest.approx(200.0)
    assert "200-token generations" in clock.source


def test_length_aware_clock_with_fixed_tokens_uses_that_length(runs):
    from m1eval.analysis.budget import clock_for

    fast, _ = runs  # model "fast", 50-token completions
    prof = _profile()
    prof.display_name = "fast"
    # Mean length 50 -> factor 1 (proportional below 100 tokens); fixed 200 -> factor 2/3.
    assert clock_for(fast, [prof], length_aware=True).tokens_per_second == pytest.approx(300.0)
    fixed = clock_for(fast, [prof], length_aware=True, tokens_per_sample=200)
    assert fixed.tokens_per_second == pytest.approx(200.0) and "200-token generations" in fixed.source


def test_paired_difference_has_width_when_every_difference_is_equal():
    """Both models solve all 30 problems at their k: d = 0, but 30 problems cannot pin it to [0, 0]."""
    import numpy as np

    from m1eval.analysis.intervals import ProblemSet, paired_difference

    ids = [f"p{i}" for i in range(30)]
    solved = ProblemSet(ids, [np.zeros(4, dtype=int)] * 30, [np.ones(4, dtype=bool)] * 30)
    d = paired_difference(solved, solved, "pass", 4, 2, sign_flips=200)
    diff, low, high, p = d.diff, d.low, d.high, d.p_value
    assert diff == 0.0 and low < 0 < high and high - low > 0.05
    assert p == 1.0
    # a model that cannot afford one sample scores 0 on every problem: every difference is 1
    d = paired_difference(solved, solved, "pass", 4, 0, sign_flips=200)
    diff, low, high = d.diff, d.low, d.high
    assert diff == 1.0 and low < 1.0 and high == 1.0
