"""Hand-made run folders with exactly known grades, tokens and timings for budget tests.

Unlike ``synthetic_runs`` (random but realistic), every number here is chosen so the
expected accuracies, prices and verdicts can be worked out on paper.
"""

from __future__ import annotations

from pathlib import Path

from m1eval.records import BatchTiming, Completion, Grade, Problem
from m1eval.store import RunStore, run_path


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
) -> Path:
    """One problem per row of ``correct``; one batch per problem, ``batch_seconds`` long."""
    path = run_path(root, task, model, "hand")
    problems = [Problem(task, f"p{i}", f"Question {i}?", [str(i + 1)], "integer") for i in range(len(correct))]
    store = RunStore.create(path, {"run_id": "hand", "task": {"name": task}, "model": {"name": model}})
    grades = []
    try:
        store.write_problems(problems)
        for i, row in enumerate(correct):
            batch = []
            for j, ok in enumerate(row):
                cluster = clusters[i][j] if clusters else (0 if ok else 1)
                answer = None if cluster is None else str(i + 1 if ok else 1000 + cluster)
                text = texts[i][j] if texts else f"reasoning \\boxed{{{answer}}}"
                n_tokens = completion_tokens[i][j] if completion_tokens else tokens
                batch.append(
                    Completion(f"p{i}", j, j, text, 10, n_tokens, "stop", f"b{i}",
                               prefix_chars=prefix_chars[i][j] if prefix_chars else None)
                )
                grades.append(Grade(f"p{i}", j, answer, bool(ok), "ok" if answer else "no_answer", cluster, "hand"))
            timing = BatchTiming(f"b{i}", "hand", len(batch), batch_seconds, sum(c.completion_tokens for c in batch))
            store.append_samples(batch, timing)
        store.write_grades(grades)
    finally:
        store.unlock()
    return path
