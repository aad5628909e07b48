"""Rebuild the example's report, figures, budget tables and notebook outputs in docs/example-smollm2/.

Everything here reads the stored run; nothing generates. The run is graded with the preset's
extraction policy (``lenient``: boxed, then answer phrases, the last math span, the last
number), since SmolLM2 rarely writes ``\\boxed{}``; a run already graded with that policy by
the current grader is not re-graded (one graded by an older grader version is). ``report-boxed.md``
shows the same samples under the paper's boxed-only policy (graded in a temporary copy, the
run folder untouched); ``report-by-level.md`` gives every metric per MATH level.

    python scripts/example_smollm2_docs.py [RUN_DIR]
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


def _graded_as_wanted(run: Path) -> bool:
    """Graded ``lenient`` (the recorded policy is the expanded rule list) by the current grader."""
    import json

    from m1eval.grading import GRADER_VERSION, canonical_policy

    manifest = json.loads((run / "manifest.json").read_text())
    stage = manifest.get("stages", {}).get("grade") or {}
    return (
        (run / "grades.parquet").exists()
        and stage.get("extraction") == canonical_policy("lenient")
        and stage.get("grader_version") == GRADER_VERSION
    )


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else RUN
    OUT.mkdir(parents=True, exist_ok=True)
    if not _graded_as_wanted(run):
        m1eval("grade", str(run), "--extraction", "lenient")
    m1eval("report", str(run), "--format", "markdown", "--output", str(OUT / "report.md"))
    m1eval("report", str(run), "--by", "level", "--format", "markdown", "--output", str(OUT / "report-by-level.md"))
    figures = ("passk", "majk", "budget", "length")
    m1eval("plot", str(run), *(a for f in figures for a in ("--figure", f)), "--out", str(OUT))
    m1eval("budget", str(run), "--metric", "pass", "--sequential", "--out", str(OUT / "budget"))
    notebook = {**os.environ, "M1EVAL_NB_RUNS": str(run), "M1EVAL_NB_OUT": str(OUT / "notebook")}
    print("$ python notebooks/execute.py notebooks/scaling_under_a_clock.py", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "notebooks/execute.py",
                "notebooks/scaling_under_a_clock.py",
                "--out",
                f"{tmp}/example.ipynb",
            ],
            check=True,
            cwd=REPO,
            env={**notebook, "PYTHONPATH": str(REPO)},
        )
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "smollm2-135m" / "boxed"
        copy.mkdir(parents=True)
        for name in ("manifest.json", "problems.jsonl", "samples.jsonl", "batches.jsonl"):
            shutil.copy2(run / name, copy / name)
        m1eval("grade", str(copy), "--extraction", "boxed")
        m1eval("report", str(copy), "--format", "markdown", "--output", str(OUT / "report-boxed.md"))


if __name__ == "__main__":
    main()
