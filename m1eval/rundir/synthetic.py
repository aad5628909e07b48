"""Synthetic run folders, written through ``RunStore`` exactly as a real run would be.

Analysis tests (metrics, report, budget, plots) need realistic run folders long before
(and independently of) the engines. Problems differ in difficulty (per-problem accuracy
drawn from a Beta around ``accuracy``) and wrong answers spread over a few clusters, so
majority voting behaves as on real data: it helps on easy problems and hurts on hard
ones. Everything is derived from ``seed``: the same call writes the same folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from m1eval.records import BatchTiming, Completion, Grade, Problem, SamplingConfig
from m1eval.rundir.golds import PROBLEM_HASHES, problem_hashes
from m1eval.rundir.store import RunStore, run_path

PREFIX_BUDGETS = (256, 512, 1024, 2048, 4096, 8192, 16384)


def make_synthetic_run(
    root: str | os.PathLike[str],
    *,
    task: str = "aime25",
    model: str = "fake-a",
    n_problems: int = 30,
    n_samples: int = 16,
    accuracy: float = 0.4,
    seed: int = 0,
    tokens_per_sample: int = 2000,
    batch_seconds: float = 10.0,
    batch_size: int = 16,
    max_tokens: int = 8192,
    no_answer_rate: float = 0.05,
    run_id: str | None = None,
    with_scores: bool = True,
    graded: bool = True,
    concentration: float = 2.0,
    text_chars: int | None = None,
) -> Path:
    """Write a complete run folder and return its path.

    - correct samples share cluster 0 (answer = gold); wrong ones fall in clusters 1..4
      with decreasing probability; ``no_answer_rate`` of samples have no answer (cluster
      None); samples reaching ``max_tokens`` are truncated (finish "length", no answer);
    - ``completion_tokens`` ~ Gamma with mean ``tokens_per_sample``;
    - one ``BatchTiming`` per ``batch_size`` samples, wall time ``batch_seconds`` scaled
      by the batch's longest completion (what a real batched engine pays for);
    - ``Completion.scores["score"]`` (if ``with_scores``) is a noisy verifier score,
      higher on correct samples, for weighted voting and best-of-k;
    - ``text_chars`` pads every text's reasoning to about that many characters (the answer
      stays last), for measuring what long completions cost the later stages; every number
      (tokens, grades, scores) is the same whatever the length.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    rng = np.random.default_rng(seed)
    run_id = run_id or f"synthetic-s{seed}"
    path = run_path(root, task, model, run_id)
    sampling = SamplingConfig(temperature=0.6, top_p=0.95, max_tokens=max_tokens, seed=seed)

    problems = [
        Problem(
            task=task,
            id=f"{task}-{i:04d}",
            question=f"Synthetic question {i}?",
            answers=[str(100 + i)],
            answer_format="integer",
        )
        for i in range(n_problems)
    ]
    eps = 1e-3
    mean = min(max(accuracy, eps), 1 - eps)
    if accuracy in (0.0, 1.0):
        difficulty = np.full(n_problems, accuracy)
    else:
        difficulty = rng.beta(mean * concentration, (1 - mean) * concentration, size=n_problems)

    completions: list[Completion] = []
    grades: list[Grade] = []
    wrong_weights = np.array([0.5, 0.25, 0.15, 0.1])
    for problem, p in zip(problems, difficulty):
        gold = int(problem.answers[0])
        for j in range(n_samples):
            tokens = int(max(1, rng.gamma(4.0, tokens_per_sample / 4.0)))
            truncated = tokens >= max_tokens
            tokens = min(tokens, max_tokens)
            abstain = rng.random() < no_answer_rate
            is_correct = (not truncated) and (not abstain) and rng.random() < p
            if truncated:
                answer, cluster, status = None, None, "truncated"
            elif abstain:
                answer, cluster, status = None, None, "no_answer"
            elif is_correct:
                answer, cluster, status = str(gold), 0, "ok"
            else:
                cluster = int(rng.choice(len(wrong_weights), p=wrong_weights)) + 1
                answer, status = str(gold + cluster), "ok"
            body = f"Let me think step by step about problem {problem.id}. " * 3
            if text_chars is not None and text_chars > len(body):
                body = (body * (text_chars // len(body) + 1))[:text_chars]
            text = body + (f"The answer is \\boxed{{{answer}}}." if answer is not None else "I am not sure.")
            prefix = {str(b): int(len(text) * b / tokens) for b in PREFIX_BUDGETS if b < tokens}
            score = float(rng.normal(1.0 if is_correct else 0.0, 0.8)) if with_scores else None
            completions.append(
                Completion(
                    problem_id=problem.id,
                    sample_index=j,
                    seed=int(rng.integers(2**31)),
                    text=text,
                    prompt_tokens=120,
                    completion_tokens=tokens,
                    finish_reason="length" if truncated else "stop",
                    batch_id="",
                    prefix_chars=prefix or None,
                    scores={"score": score} if score is not None else None,
                )
            )
            grades.append(Grade(problem.id, j, answer, bool(is_correct), status, cluster, "synthetic"))

    started = time.time()
    manifest = {
        "run_id": run_id,
        "task": {
            "name": task,
            "rows": n_problems,
            "content_hash": "synthetic",
            "limit": None,
            PROBLEM_HASHES: problem_hashes(problems),
        },
        "model": {"name": model, "path": f"synthetic/{model}", "preset": None},
        "engine": {"name": "synthetic", "options": {"batch_size": batch_size}},
        "sampling": {**sampling.to_dict(), "n": n_samples},  # the manifest stores k as sampling.n
        "versions": {"m1eval": "synthetic"},
        "host": {"name": "synthetic"},
        "stages": {},
    }
    store = RunStore.create(path, manifest)
    try:
        store.write_problems(problems)
        clock = started
        for b, start in enumerate(range(0, len(completions), batch_size)):
            batch = completions[start : start + batch_size]
            batch_id = f"b{b:05d}"
            for c in batch:
                c.batch_id = batch_id
            longest = max(c.completion_tokens for c in batch)
            wall = batch_seconds * longest / max(tokens_per_sample, 1)
            timing = BatchTiming(
                batch_id=batch_id,
                engine="synthetic",
                batch_size=len(batch),
                wall_seconds=float(wall),
                generated_tokens=int(sum(c.completion_tokens for c in batch)),
                prompt_tokens=int(sum(c.prompt_tokens for c in batch)),
                started_at=clock,
            )
            clock += wall
            store.append_samples(batch, timing)
        store.set_stage("generate", "done", samples=len(completions))
        if graded:
            store.write_grades(grades)
            store.set_stage("grade", "done", grades=len(grades))
    finally:
        store.unlock()
    return path
