"""Speed of m1eval's statistics on a MATH500-sized run: 500 problems x n = 64 samples.

Targets (issue 4): point estimates of every metric at every k in under 1 s, and the
curves with their intervals (``interval_curve``, 1000 sign_flips requested) in under 10 s.
Since issue 17 the intervals are closed-form over the per-problem estimates, so a
"intervals" line costs about one point estimate. Prints each time and its ratio
to the target, all measured in this one process on synthetic vote profiles shaped like
real ones (per-problem accuracy spread from 0 to 1, wrong answers over a few clusters,
some samples without an answer).

    python benchmarks/metrics_speed.py [--problems 500] [--n 64] [--sign_flips 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from m1eval.analysis import intervals as B
from m1eval.analysis import metrics as M
from m1eval.analysis.metrics import k_grid


def synthetic_problems(n_problems: int, n: int, seed: int) -> B.ProblemSet:
    rng = np.random.default_rng(seed)
    ids, clusters, correct, scores = [], [], [], []
    wrong = np.array([0.35, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05])
    for p in range(n_problems):
        acc = rng.beta(0.7, 0.9)
        draw = rng.random(n)
        cl = np.where(draw < acc, 0, 1 + rng.choice(len(wrong), size=n, p=wrong))
        cl[rng.random(n) < 0.05] = -1
        ok = cl == 0
        ids.append(f"p{p}")
        clusters.append(cl)
        correct.append(ok)
        scores.append(np.clip(rng.normal(np.where(ok, 0.7, 0.4), 0.2), 0, 1))
    return B.ProblemSet(ids, clusters, correct, scores)


def timed(label: str, target: float | None, fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    ratio = f"  ({seconds / target:.2f} x target {target:g} s)" if target else ""
    print(f"{label:<58s} {seconds:8.3f} s{ratio}", flush=True)
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--sign-flips", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    problems = synthetic_problems(args.problems, args.n, args.seed)
    every_k = k_grid(args.n, every_k=True)
    pow2 = k_grid(args.n)
    print(f"{args.problems} problems x n={args.n}; every k = 1..{args.n}; powers of two {pow2}")

    exact = ("pass", "maj", "maj_first", "best")
    total_point = 0.0
    for metric in exact:
        _, s = timed(
            f"point, {M.metric_info(metric).label} every k", None, lambda m=metric: B.per_problem(problems, every_k, m)
        )
        total_point += s
    print(
        f"{'point estimates, exact metrics, every k (sum)':<58s} {total_point:8.3f} s  ({total_point / 1.0:.2f} x target 1 s)"
    )
    timed(
        "point, weighted maj@k every k (Monte Carlo, 200 orders)",
        None,
        lambda: B.per_problem(problems, every_k, "wmaj"),
    )

    total_boot = 0.0
    for metric in exact:
        _, s = timed(
            f"intervals (flips={args.sign_flips}), {M.metric_info(metric).label}, k=powers of 2",
            None,
            lambda m=metric: B.interval_curve(problems, pow2, m, sign_flips=args.sign_flips, seed=args.seed),
        )
        total_boot += s
    print(
        f"{'intervals, exact metrics, powers of two (sum)':<58s} {total_boot:8.3f} s  ({total_boot / 10.0:.2f} x target 10 s)"
    )
    total_every = 0.0
    for metric in ("pass", "maj"):
        _, s = timed(
            f"intervals (flips={args.sign_flips}), {M.metric_info(metric).label}, every k",
            None,
            lambda m=metric: B.interval_curve(problems, every_k, m, sign_flips=args.sign_flips, seed=args.seed),
        )
        total_every += s
    print(
        f"{'intervals, pass@k + maj@k, every k (sum)':<58s} {total_every:8.3f} s  ({total_every / 10.0:.2f} x target 10 s)"
    )
    timed(
        f"intervals (flips={args.sign_flips}), weighted maj@k (Monte Carlo), powers of 2",
        None,
        lambda: B.interval_curve(problems, pow2, "wmaj", sign_flips=args.sign_flips, seed=args.seed),
    )


if __name__ == "__main__":
    main()
