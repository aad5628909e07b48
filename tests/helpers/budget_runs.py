"""Hand-made run folders with exactly known grades, tokens and timings for budget tests.

Unlike ``synthetic_runs`` (random but realistic), every number here is chosen so the
expected accuracies, prices and verdicts can be worked out on paper.
"""

from __future__ import annotations

from pathlib import Path

from m1eval.records import BatchTiming, Completion, Grade, Problem
from m1eval.rundir.store import RunStore, run_path


def write_run(
    root: Path,
    model: str,
    correct: list[list[bool]],
    *,
    tokens: int = 50,
    clusters: list[list[int | None]] | None = None,
    texts: list[list[str]] | None = None,
    prefix_chars: list[list[dict[str, int] | None]] | None = None,
    completion_tokens: list[list[int]] | None = None,
    batch_seconds: float = 1.0,
    task: str = "toy",
    run_id: str = "hand",
    problem_ids: list[str] | None = None,
) -> Path:
    """One problem per row of ``correct``; one batch per problem, ``batch_seconds`` long.

    Problems are ``p0, p1, ...`` unless ``problem_ids`` names them (to build runs that
    scored different problems of one task).
    """
    path = run_path(root, task, model, run_id)
    ids = problem_ids or [f"p{i}" for i in range(len(correct))]
    problems = [Problem(task, pid, f"Question {pid}?", [str(i + 1)], "integer") for i, pid in enumerate(ids)]
    store = RunStore.create(path, {"run_id": run_id, "task": {"name": task}, "model": {"name": model}})
    grades = []
    try:
        store.write_problems(problems)
        for i, row in enumerate(correct):
            batch = []
            pid = ids[i]
            for j, ok in enumerate(row):
                cluster = clusters[i][j] if clusters else (0 if ok else 1)
                answer = None if cluster is None else str(i + 1 if ok else 1000 + cluster)
                text = texts[i][j] if texts else f"reasoning \\boxed{{{answer}}}"
                n_tokens = completion_tokens[i][j] if completion_tokens else tokens
                batch.append(
                    Completion(
                        pid,
                        j,
                        j,
                        text,
                        10,
                        n_tokens,
                        "stop",
                        f"b{i}",
                        prefix_chars=prefix_chars[i][j] if prefix_chars else None,
                    )
                )
                grades.append(Grade(pid, j, answer, bool(ok), "ok" if answer else "no_answer", cluster, "hand"))
            timing = BatchTiming(f"b{i}", "hand", len(batch), batch_seconds, sum(c.completion_tokens for c in batch))
            store.append_samples(batch, timing)
        store.write_grades(grades)
    finally:
        store.unlock()
    return path


# ---------------------------------------------------------------------------- issue-16 examples
#
# Constructed situations in which the budget verdicts went wrong; each is a task of
# its own. Every run has 50 tokens per sample and one batch per problem, so its clock
# (from batches.jsonl) is samples x 50 tokens / batch_seconds per problem.

T, F = True, False
EXAMPLES: dict[str, tuple[list[dict], list[str]]] = {
    # Equal totals of correct samples with equal n: pass@1 is exactly 2/3 for A (3/3, 1/3)
    # and B (2/3, 2/3), but the float sums differ by 1e-16. A round of samples costs A
    # 2.67 s and B 2 s, so at 3 s both are at k = 1 and tie; from 4 s B is ahead at k = 2.
    "tie": (
        [
            {"model": "A", "correct": [[T, T, T], [T, F, F]], "batch_seconds": 4.0},
            {"model": "B", "correct": [[T, T, F], [T, T, F]], "batch_seconds": 3.0},
        ],
        ["--metric", "pass", "--budget", "3"],
    ),
    # The literal pair (A: 3/3, 0/3; B: 1/3, 2/3; pass@1 = 1/2 for both), same clocks.
    "tie_literal": (
        [
            {"model": "A", "correct": [[T, T, T], [F, F, F]], "batch_seconds": 4.0},
            {"model": "B", "correct": [[T, F, F], [T, T, F]], "batch_seconds": 3.0},
        ],
        ["--metric", "pass", "--budget", "3"],
    ),
    # Two runs of one model: a weak cheap one (0.5 s a round) and a strong dear one (4 s).
    "twins": (
        [
            {"model": "m1", "run_id": "small", "correct": [[T, F, F, F], [F, F, F, F]], "batch_seconds": 1.0},
            {"model": "m1", "run_id": "large", "correct": [[T, T, T, T], [T, T, F, F]], "batch_seconds": 8.0},
        ],
        ["--metric", "pass", "--budget", "2", "--budget", "16"],
    ),
    # A scored six problems, B only the first three; on those three B is better.
    "shared": (
        [
            {"model": "A", "correct": [[F, F], [T, F], [T, F], [T, T], [T, T], [T, T]], "batch_seconds": 1.0},
            {"model": "B", "correct": [[T, F], [T, F], [T, F]], "batch_seconds": 2.0},
        ],
        ["--metric", "pass", "--budget", "3"],
    ),
    # Three models: A (0.25 s a round) leads, then B (1 s) from 1 s, then C (4 s) from 4 s.
    "three": (
        [
            {"model": "A", "correct": [[T, F, F, F], [F, F, F, F], [F, F, F, F]], "batch_seconds": 1 / 3},
            {"model": "B", "correct": [[T, T, T, F], [T, T, F, F], [F, F, F, F]], "batch_seconds": 4 / 3},
            {"model": "C", "correct": [[T, T, T, T], [T, T, T, T], [T, T, T, F]], "batch_seconds": 16 / 3},
        ],
        ["--metric", "pass", "--budget", "1", "--budget", "4"],
    ),
    # X: 1 of 4 right on each of 5 problems, 1 s a round (pass@2 = 0.5, pass@3 = 0.75);
    # Y: 3 problems always, 2 never, 2.5 s a round (pass@1 = 0.6). 3 s buy X three samples.
    "kflip": (
        [
            {"model": "X", "correct": [[T, F, F, F]] * 5, "batch_seconds": 0.8},
            {"model": "Y", "correct": [[T, T, T, T]] * 3 + [[F, F, F, F]] * 2, "batch_seconds": 2.0},
        ],
        ["--metric", "pass", "--budget", "3"],
    ),
}


def write_example(root: Path, name: str) -> tuple[Path, list[str]]:
    """Write the runs of example ``name`` under ``root/name``; return that folder and its CLI options."""
    runs, options = EXAMPLES[name]
    folder = Path(root) / name
    for spec in runs:
        spec = dict(spec)
        write_run(folder, spec.pop("model"), spec.pop("correct"), task=name, **spec)
    return folder / name, options


if __name__ == "__main__":  # python tests/helpers/budget_runs.py DIR: write every example, print its command
    import sys

    for example in EXAMPLES:
        where, opts = write_example(Path(sys.argv[1]), example)
        print(f"m1eval budget {where} {' '.join(opts)}")
