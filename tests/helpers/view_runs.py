"""Run folders for the viewer's tests: a hostile one (model text that tries to run script) and a known one.

``make_hostile_run`` puts the classic injections into every place the viewer shows model or
data text: the model name and run id, questions, golds, extracted answers and completion
texts, with control characters, a long thinking part and a long answer part (so a sample
is collapsed and loaded on demand). Any of them running sets ``window.__xss``.
``make_known_run`` has hand-made clusters whose page values are known in advance.
"""

from __future__ import annotations

import os
from pathlib import Path

from m1eval.records import Completion, Grade, Problem
from m1eval.rundir.store import RunStore, run_path

PAYLOADS = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=2">',
    "</textarea><script>window.__xss=3</script>",
    '<a href="javascript:window.__xss=4">click</a>',
    "'><svg onload=window.__xss=5>",
    "{{ 7*7 }}{% raw %}",  # template syntax in data is text, not template
    "ctrl\x00\x01\x1b[31m\x7f\u2028\u2029end",
)
HOSTILE = " ".join(PAYLOADS)
LONG_THINKING = "<think>" + ("I consider <b>bold</b> & <script>window.__xss=6</script> options. " * 120) + "</think>"
LONG_ANSWER = ("Working: <img src=x onerror=window.__xss=7> " * 90) + "so the answer is \\boxed{<script>x</script>}."


def _manifest(task: str, model: str, run_id: str, n: int) -> dict:
    return {
        "run_id": run_id,
        "task": {"name": task, "rows": 3, "content_hash": "test", "limit": None},
        "model": {"name": model, "path": model, "preset": None},
        "engine": {"name": "test", "options": {}},
        "sampling": {"temperature": 0.6, "top_p": 0.95, "max_tokens": 4096, "seed": 0, "n": n},
        "stages": {"generate": {"state": "done"}, "grade": {"state": "done", "extraction": "boxed"}},
    }


def write_run(
    root: str | os.PathLike[str],
    *,
    task: str,
    model: str,
    run_id: str,
    problems: list[Problem],
    samples: list[tuple[Completion, Grade]],
    manifest_model: str | None = None,
) -> Path:
    """A run folder written through RunStore, as a real run is."""
    path = run_path(root, task, model, run_id)
    n = max((c.sample_index for c, _ in samples), default=-1) + 1
    store = RunStore.create(path, _manifest(task, manifest_model or model, run_id, n))
    try:
        store.write_problems(problems)
        store.append_samples([c for c, _ in samples])
        store.write_grades([g for _, g in samples])
    finally:
        store.unlock()
    return path


def _sample(
    pid: str,
    j: int,
    text: str,
    answer: str | None,
    correct: bool,
    cluster: int | None,
    status: str = "ok",
    finish: str = "stop",
    rule: str | None = "boxed",
) -> tuple[Completion, Grade]:
    completion = Completion(
        pid, j, seed=j, text=text, prompt_tokens=10, completion_tokens=100 + j, finish_reason=finish, batch_id="b0"
    )
    return completion, Grade(pid, j, answer, correct, status, cluster, "test-grader", rule if answer else None)


def make_hostile_run(root: str | os.PathLike[str], model: str = "<script>m</script>") -> Path:
    """3 problems x 4 samples where every shown string is an injection attempt (two models: a pair to compare)."""
    problems = [
        Problem(
            "evil",
            f"p{i}-{PAYLOADS[i]}",
            f"Question {i}: {HOSTILE}",
            [PAYLOADS[(i + 1) % 7], "2"],
            "expression",
            {"level": PAYLOADS[i], "subject": "<b>subj</b>"},
        )
        for i in range(3)
    ]
    samples = []
    for i, p in enumerate(problems):
        gold = p.answers[0]
        samples += [
            _sample(p.id, 0, f"{HOSTILE} so \\boxed{{{gold}}}", gold, True, 0),
            _sample(p.id, 1, f"{LONG_THINKING}{LONG_ANSWER}", "<script>x</script>", False, 1),
            _sample(p.id, 2, f"text {PAYLOADS[3]} \\boxed{{{PAYLOADS[4]}}}", PAYLOADS[4], False, 2),
            _sample(
                p.id,
                3,
                f"{PAYLOADS[2]} no answer here",
                None,
                False,
                None,
                status="no_answer",
                finish="length" if i == 0 else "stop",
            ),
        ]
    return write_run(
        root,
        task="evil",
        model=model,
        run_id='r"><img src=x onerror=window.__xss=8>',
        problems=problems,
        samples=samples,
        manifest_model=f"{model}<script>window.__xss=9</script>",
    )


def make_known_run(root: str | os.PathLike[str], model: str = "known-a", flip: bool = False) -> Path:
    """4 problems x 4 samples with known clusters.

    - q0 "selection": gold 5 in 1 sample, answer 7 in 3: the vote picks 7 though 5 was found;
    - q1 "always": 4 correct;  q2 "never": 2 x "9", 2 x no answer;
    - q3 a tie: 2 x gold "1", 2 x "3" (maj@4 = 0.5).
    ``flip`` swaps q0 and q1's outcomes (for a pair of runs that differ on known problems).
    """
    problems = [
        Problem("known", f"q{i}", f"What is q{i}?", [g], "integer", {"level": i})
        for i, g in enumerate(["5", "4", "8", "1"])
    ]
    s = []
    q0 = [("5", True, 0), ("7", False, 1), ("7", False, 1), ("7", False, 1)]
    q1 = [("4", True, 0)] * 4
    if flip:
        q0, q1 = [("5", True, 0)] * 4, [("4", True, 0), ("6", False, 1), ("6", False, 1), ("6", False, 1)]
    for j, (a, ok, c) in enumerate(q0):
        s.append(_sample("q0", j, f"so \\boxed{{{a}}}", a, ok, c))
    for j, (a, ok, c) in enumerate(q1):
        s.append(_sample("q1", j, f"thus \\boxed{{{a}}}", a, ok, c))
    s += [
        _sample("q2", 0, "\\boxed{9}", "9", False, 0),
        _sample("q2", 1, "\\boxed{9.0}", "9.0", False, 0),
        _sample("q2", 2, "no idea", None, False, None, status="no_answer"),
        _sample("q2", 3, "cut off", None, False, None, status="truncated", finish="length"),
    ]
    s += [_sample("q3", j, f"\\boxed{{{a}}}", a, a == "1", 0 if a == "1" else 1) for j, a in enumerate("1133")]
    return write_run(root, task="known", model=model, run_id="r1", problems=problems, samples=s)
