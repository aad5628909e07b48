"""Grading speed: a synthetic 500 x 64 run, m1eval's Grader against math-verify on the same pairs.

The run mimics real sampling: golds are the real MATH500 / OlympiadBench / AIME golds,
most completions of a problem repeat a handful of answers (the right one written in
several ways, a few wrong ones), some have no box or were truncated, and a few per cent
are pathological (injection payloads, towers, deep nesting, megabyte strings).

    python benchmarks/grading_speed.py [--problems 500] [--samples 64] [--workers 2] [--mv-pairs 1500]

math-verify is slow, so it is timed on a random subset of the same (gold, completion)
pairs and its rate is compared per completion. Needs the dev extra (math-verify).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from m1eval.records import Completion, Problem  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

PATHOLOGICAL = [
    "\\boxed{__import__('os').system('touch /tmp/pwned')}",
    "\\boxed{10^{10^{10^{10}}}}",
    "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}",
    "\\boxed{" + "9" * 50_000 + "}",
    "\\boxed{(" * 400 + "x" + ")}" * 400,
    "x" * 1_000_000 + "\\boxed{3}",
    "\\boxed{\\frac{\\frac{\\frac{\\frac{1}{x}}{x}}{x}}{\\sqrt{\\sqrt{\\sqrt{x^{x^{x^{x}}}}}}}}",
    "\\boxed{\ud800\udc00 \x00 \u202e 12}",
    "\\boxed{9999999!}",
    "\\boxed{(x+1)^{100000}}",
    # issue 10: a number, a run of words, a character the unit pattern does not allow
    "\\boxed{5 abcdefghijklmnopqrstuvwxyzabcd!}",
    "\\boxed{1 " + "a" * 40 + "!}",
    "so the total is \\boxed{5 apples and pears and plums and figs!}",
    "\\boxed{" * 20_000 + "1",
    "\\boxed{\\text{" + "x " * 5_000 + "?}}",
]


def _variants(gold: str, rng: random.Random) -> list[str]:
    """Correct answers written the ways models write them."""
    out = [gold, gold, gold]
    out.append(gold.replace("\\frac", "\\dfrac"))
    out.append(f"\\text{{{gold}}}" if gold.isdigit() else gold.replace(" ", ""))
    if gold.lstrip("-").isdigit():
        out += [f"0{gold}", f"x = {gold}", f"{gold}.0"]
    else:
        out += [gold + " ", gold.replace("\\frac", "\\tfrac")]
        if not any(s in gold for s in ("=", ",", "\\in", "\\ge", "\\le", "<", ">", "text", "mbox")):
            out.append(f"x = {gold}")
    return out


def _wrong(gold: str, rng: random.Random) -> list[str]:
    if gold.lstrip("-").isdigit():
        value = int(gold)
        return [str(value + d) for d in (1, -1, 2, 10, value)] + [str(rng.randint(0, 999))]
    return [gold + "+1", f"2({gold})", "0", "\\frac{1}{2}", f"{rng.randint(2, 99)}", gold.replace("2", "3")]


def load_golds(limit: int) -> list[Problem]:
    from m1eval.tasks.loader import load_task

    problems: list[Problem] = []
    for name in ("math500", "olympiadbench", "aime24", "aime25", "amc23"):
        problems.extend(load_task(name, DATA))
    rng = random.Random(0)
    rng.shuffle(problems)
    return problems[:limit]


def synth_run(problems: list[Problem], samples: int, seed: int = 0) -> list[tuple[Problem, list[Completion]]]:
    rng = random.Random(seed)
    run = []
    for problem in problems:
        gold = problem.answers[0].strip("$")
        right, wrong = _variants(gold, rng), _wrong(gold, rng)
        popular_wrong = rng.sample(wrong, k=min(3, len(wrong)))
        completions = []
        for i in range(samples):
            r = rng.random()
            finish = "stop"
            if r < 0.55:
                text = f"<think>...</think> So the answer is $\\boxed{{{rng.choice(right)}}}$."
            elif r < 0.85:
                text = f"Thus $\\boxed{{{rng.choice(popular_wrong)}}}$"
            elif r < 0.92:
                text = f"\\boxed{{{rng.choice(wrong)}}}"
            elif r < 0.96:
                text, finish = "<think> still thinking ...", "length"
            elif r < 0.97:
                text = "I could not solve it."
            else:
                text = rng.choice(PATHOLOGICAL)
            completions.append(Completion(problem.id, i, i, text, 10, 100, finish, "b0"))
        run.append((problem, completions))
    return run


def time_math_verify(pairs: list[tuple[str, str]]) -> tuple[float, int]:
    from math_verify import parse, verify

    correct = 0
    start = time.perf_counter()
    for gold, text in pairs:
        try:
            gold_parsed = parse(f"${gold}$")
            answer_parsed = parse(text[-5000:])
            correct += bool(verify(gold_parsed, answer_parsed))
        except Exception:  # noqa: BLE001 - count as wrong, as its harness does
            pass
    return time.perf_counter() - start, correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mv-pairs", type=int, default=1500, help="pairs math-verify is timed on (0 = skip)")
    args = parser.parse_args()

    from m1eval.grading import Grader

    problems = load_golds(args.problems)
    run = synth_run(problems, args.samples)
    total = sum(len(c) for _, c in run)

    start = time.perf_counter()
    with Grader(workers=args.workers) as grader:
        grades = grader.grade_many(run, progress=False)
    ours = time.perf_counter() - start
    statuses: dict[str, int] = {}
    for g in grades:
        statuses[g.status] = statuses.get(g.status, 0) + 1
    accuracy = sum(g.correct for g in grades) / len(grades)
    print(
        f"m1eval grader: {total} completions ({len(run)} problems x {args.samples}) in {ours:.2f} s "
        f"with {args.workers} workers = {total / ours:,.0f} completions/s"
    )
    print(
        f"  distinct pairs {grader.stats['pairs']}, sent to pool {grader.stats['pool_items']}, "
        f"timeouts {grader.stats['timeouts']}; statuses {statuses}; accuracy {accuracy:.3f}"
    )
    print(f"  target: < 20 s for 32,000 on 2 cores -> {'PASS' if ours < 20 * total / 32000 else 'FAIL'}")

    if args.mv_pairs:
        rng = random.Random(1)
        flat = [(p, c) for p, cs in run for c in cs]
        subset = rng.sample(flat, k=min(args.mv_pairs, len(flat)))
        clean = [(p, c) for p, c in subset if c.text not in PATHOLOGICAL]
        our_rate = total / ours
        for label, pairs in (("all sampled pairs", subset), ("without pathological", clean)):
            mv_seconds, _ = time_math_verify([(p.answers[0].strip("$"), c.text) for p, c in pairs])
            # The same pairs through a fresh Grader: no memo shared with the full run above.
            start = time.perf_counter()
            with Grader(workers=args.workers) as fresh:
                fresh.grade_many([(p, [c]) for p, c in pairs], progress=False)
            subset_seconds = time.perf_counter() - start
            mv_rate = len(pairs) / mv_seconds
            print(
                f"math-verify ({label}): {len(pairs)} pairs in {mv_seconds:.2f} s = {mv_rate:,.0f} completions/s "
                f"(1 process); m1eval on the same pairs {len(pairs) / subset_seconds:,.0f} completions/s"
            )
            print(
                f"  ratio m1eval / math-verify: whole run {our_rate / mv_rate:.1f}x, same pairs "
                f"{(len(pairs) / subset_seconds) / mv_rate:.1f}x (target >= 5x; m1eval uses {args.workers} workers)"
            )


if __name__ == "__main__":
    main()
