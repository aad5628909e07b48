"""Rebuild the example's report, figures and budget table in docs/example-smollm2/ from its run folder.

Everything here reads the stored run; nothing generates. Two gradings are reported:

- ``report.md``: the run's own ``grades.parquet`` (the grader's default policy, answers in
  ``\\boxed{}`` only: what the run would score under a boxed-answer protocol);
- ``report-answer-phrases.md``: the same samples re-graded in a temporary copy with the
  grader's answer-phrase fallbacks on ("the answer is 5", "final answer: 5"), the closest
  policy on this branch to the preset's ``lenient`` extraction, since SmolLM2 rarely boxes.

    PYTHONPATH=$PWD python scripts/example_smollm2_docs.py [RUN_DIR]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "results" / "math500" / "smollm2-135m" / "levels1-2-t0.7-p1-max320"
OUT = Path(os.environ.get("M1EVAL_EXAMPLE_DOCS", REPO / "docs" / "example-smollm2"))


def m1eval(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print("$ m1eval", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "m1eval", *args], check=True, cwd=REPO, env=env)


def regrade_with_phrases(run: Path, copy: Path) -> None:
    """Grade a copy of the run with answer-phrase fallbacks (the original stays untouched)."""
    from m1eval.grading import grader

    for name in ("manifest.json", "problems.jsonl", "samples.jsonl", "batches.jsonl"):
        shutil.copy2(run / name, copy / name)
    original = grader.Grader.__init__

    def with_phrases(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "fallbacks": True})

    grader.Grader.__init__ = with_phrases
    try:
        grader.grade_run(copy, progress=False)
    finally:
        grader.Grader.__init__ = original


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else RUN
    OUT.mkdir(parents=True, exist_ok=True)
    if not (run / "grades.parquet").exists():
        m1eval("grade", str(run))
    m1eval("report", str(run), "--format", "markdown", "--output", str(OUT / "report.md"))
    m1eval("plot", str(run), "--figure", "passk", "--figure", "majk", "--figure", "length", "--out", str(OUT))
    m1eval("budget", str(run), "--metric", "pass", "--out", str(OUT / "budget"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "smollm2-135m" / "answer-phrases"
        copy.mkdir(parents=True)
        regrade_with_phrases(run, copy)
        m1eval("report", str(copy), "--format", "markdown", "--output", str(OUT / "report-answer-phrases.md"))
        m1eval("plot", str(copy), "--figure", "passk", "--figure", "majk", "--out", str(OUT / "answer-phrases"))


if __name__ == "__main__":
    main()
