"""The token-budget curve is graded as the run was: at L >= the run's budget it is the report's pass@1.

Before, ``budget --sequential`` and ``plot --figure length`` graded the cut texts ``boxed``-only
whatever policy the run recorded; the committed SmolLM2 example (graded ``lenient``) then drew
0 % at every L against 2.8 % in its report. The runs here hold real SmolLM2 texts from that
example (problems with a correct sample under ``lenient``), regraded under each policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m1eval.analysis.budget.sequential import sequential_curve
from m1eval.analysis.report import summarize_run
from m1eval.pipeline.stages import grade_run
from m1eval.records import BatchTiming, Completion, Problem
from m1eval.rundir.rundata import load_run
from m1eval.rundir.store import RunStore, run_path

# by name: the README's quickstart puts its own run beside it
EXAMPLE = Path(__file__).resolve().parent.parent / "results" / "math500" / "smollm2-135m" / "levels1-2-t0.7-p1-max320"
SAMPLES_PER_PROBLEM = 4


def _example_subset(root: Path, n_problems: int = 10) -> Path:
    """A run of the example's real texts: problems where the current ``lenient`` finds a right answer
    in the first samples, and problems where it does not (chosen by grading them now, so the
    premise holds whatever the grader version the example was stored with)."""
    from m1eval.grading import Grader

    problems = {p["id"]: Problem.from_dict(p) for p in map(json.loads, (EXAMPLE / "problems.jsonl").open())}
    samples: dict[str, list[Completion]] = {pid: [] for pid in problems}
    for line in (EXAMPLE / "samples.jsonl").open(encoding="utf-8"):
        completion = Completion.from_dict(json.loads(line))
        if completion.sample_index < SAMPLES_PER_PROBLEM:
            samples[completion.problem_id].append(completion)
    grader = Grader(workers=1, extraction="lenient")
    try:
        grades = grader.grade_many([(problems[pid], cs) for pid, cs in samples.items()], progress=False)
    finally:
        grader.close()
    right = sorted({g.problem_id for g in grades if g.correct})
    wrong = sorted(set(problems) - set(right))
    chosen = right[: n_problems // 2] + wrong[: n_problems - n_problems // 2]
    assert len(right) >= 2, "the example should hold lenient-correct answers"
    path = run_path(root, "math500", "smollm2-135m", "subset")
    store = RunStore.create(
        path,
        {
            "run_id": "subset",
            "task": {"name": "math500"},
            "model": {"name": "smollm2-135m"},
            "sampling": {"max_tokens": 320},
        },
    )
    try:
        store.write_problems([problems[pid] for pid in chosen])
        for pid in chosen:
            batch = sorted(samples[pid], key=lambda c: c.sample_index)
            assert len(batch) == SAMPLES_PER_PROBLEM, pid
            store.append_samples(
                batch, BatchTiming(batch[0].batch_id, "vllm", len(batch), 1.0, sum(c.completion_tokens for c in batch))
            )
    finally:
        store.unlock()
    return path


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    return _example_subset(tmp_path_factory.mktemp("sequential-policy"))


@pytest.mark.parametrize("policy", ["boxed", "lenient", "boxed,answer-phrase"])
def test_at_the_runs_budget_the_length_curve_is_the_reports_pass_at_1(subset: Path, policy: str):
    grade_run(subset, extraction=policy, workers=1)
    run = load_run(subset)
    reported = summarize_run(run, sign_flips=0).pass1
    curve = sequential_curve(run, lengths=[320, 512], sign_flips=0)
    assert curve.accuracy.tolist() == pytest.approx([reported, reported], abs=1e-12), policy
    no_answer = float(run.frame["answer"].isna().mean())
    assert curve.no_answer.tolist() == pytest.approx([no_answer, no_answer], abs=1e-12), policy


def test_the_policies_differ_on_these_texts(subset: Path):
    """The identity above could not tell policies apart if they scored these texts alike."""
    scores = {}
    for policy in ("boxed", "lenient"):
        grade_run(subset, extraction=policy, workers=1)
        scores[policy] = summarize_run(load_run(subset), sign_flips=0).pass1
    assert scores["lenient"] > scores["boxed"], scores
