"""Differential test of ``lenient`` against math-verify on real unboxed responses, and their hand labels.

The committed SmolLM2 example run (results/math500/smollm2-135m/...) holds 1,600 real
responses, almost none boxed: the free-text slice where ``lenient`` is what grades them.
Both checkers read every whole response against its gold; the script prints how often
they agree, writes every disagreement (with both extracted answers) to a JSON file to
read, and, when the hand-labelled case file exists, the agreement of each checker with
the labels (tests/data/grading_corpus_labels.json; a label is what a careful person
reading the response decides, see docs/grading.md "Hand-labelled corpus").

    python benchmarks/grading_corpus.py [--run DIR] [--out /tmp/corpus_disagreements.json]
        [--mv-cache /tmp/corpus_mv_cache.json] [--labels tests/data/grading_corpus_labels.json]

math-verify is slow, so its verdicts are cached by (gold, response). Needs the dev extra.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = ROOT / "results" / "math500" / "smollm2-135m" / "levels1-2-t0.7-p1-max320"
LABELS = ROOT / "tests" / "data" / "grading_corpus_labels.json"


def load_run(run: Path) -> tuple[dict, list[dict]]:
    problems = {}
    for line in (run / "problems.jsonl").read_text().splitlines():
        row = json.loads(line)
        problems[row["id"]] = row
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines() if line.strip()]
    return problems, samples


def math_verify_read(gold: str, text: str) -> tuple[bool, str]:
    """(verdict, what math-verify extracted) for a whole response, as its harness reads one."""
    from math_verify import parse, verify

    try:
        gold_parsed = parse(gold if "$" in gold else f"${gold}$")
        answer = parse(text)
        return bool(verify(gold_parsed, answer)), str(answer[-1]) if answer else ""
    except Exception:  # noqa: BLE001 - an error is "not equal", as in its harness
        return False, ""


def m1eval_read(problems: dict, samples: list[dict], workers: int = 2) -> list:
    """Grades of every sample under ``lenient``, through the guarded Grader (as ``grade`` runs)."""
    from m1eval.grading import Grader
    from m1eval.records import Completion, Problem

    by_problem: dict[str, list] = {}
    for s in samples:
        by_problem.setdefault(s["problem_id"], []).append(
            Completion(
                s["problem_id"],
                s["sample_index"],
                s.get("seed", 0),
                s["text"],
                0,
                0,
                s.get("finish_reason", "stop"),
                "b0",
            )
        )
    items = []
    for pid, completions in by_problem.items():
        p = problems[pid]
        items.append((Problem(p["task"], pid, p["question"], p["answers"], p.get("answer_format")), completions))
    with Grader(workers=workers, extraction="lenient") as grader:
        grades = grader.grade_many(items, progress=None)
    return grades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN)
    parser.add_argument("--out", type=Path, default=Path("/tmp/corpus_disagreements.json"))
    parser.add_argument("--mv-cache", type=Path, default=Path("/tmp/corpus_mv_cache.json"))
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    problems, samples = load_run(args.run)
    start = time.perf_counter()
    grades = m1eval_read(problems, samples, args.workers)
    ours_seconds = time.perf_counter() - start
    ours = {(g.problem_id, g.sample_index): g for g in grades}

    cache = json.loads(args.mv_cache.read_text()) if args.mv_cache.exists() else {}
    start = time.perf_counter()
    rows = []
    for i, s in enumerate(samples):
        gold = problems[s["problem_id"]]["answers"][0]
        key = gold + "\x00" + s["text"]
        if key not in cache:
            cache[key] = math_verify_read(gold, s["text"])
            if i % 100 == 0:
                args.mv_cache.write_text(json.dumps(cache))
        mv_correct, mv_answer = cache[key]
        g = ours[(s["problem_id"], s["sample_index"])]
        rows.append(
            {
                "problem_id": s["problem_id"],
                "sample_index": s["sample_index"],
                "gold": gold,
                "m1eval": g.correct,
                "m1eval_answer": g.answer,
                "m1eval_rule": g.extracted_by,
                "math_verify": mv_correct,
                "math_verify_answer": mv_answer,
                "tail": s["text"][-600:],
            }
        )
    args.mv_cache.write_text(json.dumps(cache))
    mv_seconds = time.perf_counter() - start

    disagreements = [r for r in rows if r["m1eval"] != r["math_verify"]]
    rules: dict[str, int] = {}
    for r in rows:
        rules[str(r["m1eval_rule"])] = rules.get(str(r["m1eval_rule"]), 0) + 1
    print(
        f"{len(rows)} responses: m1eval correct {sum(r['m1eval'] for r in rows)}, math-verify correct "
        f"{sum(r['math_verify'] for r in rows)}, disagreements {len(disagreements)} "
        f"(m1eval only {sum(r['m1eval'] and not r['math_verify'] for r in rows)}, math-verify only "
        f"{sum(r['math_verify'] and not r['m1eval'] for r in rows)})"
    )
    print(f"  m1eval rules: {rules}; m1eval {ours_seconds:.1f} s, math-verify {mv_seconds:.1f} s (uncached part)")
    args.out.write_text(json.dumps(disagreements, indent=1, ensure_ascii=False))
    print(f"wrote {len(disagreements)} disagreements to {args.out}")

    if args.labels.exists():
        labels = json.loads(args.labels.read_text())["cases"]
        by_key = {(r["problem_id"], r["sample_index"]): r for r in rows}
        counts = {"m1eval": [0, 0, 0], "math-verify": [0, 0, 0]}  # right, false positives, false negatives
        for case in labels:
            r = by_key.get((case["problem_id"], case["sample_index"]))
            if r is None:
                continue
            for name, verdict in (("m1eval", r["m1eval"]), ("math-verify", r["math_verify"])):
                counts[name][0] += verdict == case["correct"]
                counts[name][1] += verdict and not case["correct"]
                counts[name][2] += case["correct"] and not verdict
        n = len(labels)
        positives = sum(c["correct"] for c in labels)
        print(f"hand labels: {n} cases ({positives} correct, {n - positives} wrong)")
        for name, (right, fp, fn) in counts.items():
            print(
                f"  {name:12s} agrees on {right}/{n} = {right / max(n, 1):.1%}; false positives {fp}, "
                f"false negatives {fn}"
            )


if __name__ == "__main__":
    main()
