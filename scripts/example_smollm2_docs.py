"""Rebuild the example's report, figures and budget table in docs/example-smollm2/ from its run folder.

Everything here reads the stored run; nothing generates. The run is graded with the preset's
extraction policy (``lenient``: boxed, then answer phrases, the last math span, the last
number), since SmolLM2 rarely writes ``\\boxed{}``; a run already graded with that policy is
not re-graded. ``report-boxed.md`` shows the same samples under the paper's boxed-only policy
(graded in a temporary copy, the run folder untouched).

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


def _policy(run: Path) -> str | None:
    import json

    manifest = json.loads((run / "manifest.json").read_text())
    return (manifest.get("stages", {}).get("grade") or {}).get("extraction")


def main() -> None:
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else RUN
    OUT.mkdir(parents=True, exist_ok=True)
    if not (run / "grades.parquet").exists() or _policy(run) != "lenient":
        m1eval("grade", str(run), "--extraction", "lenient")
    m1eval("report", str(run), "--format", "markdown", "--output", str(OUT / "report.md"))
    m1eval("plot", str(run), "--figure", "passk", "--figure", "majk", "--figure", "length", "--out", str(OUT))
    m1eval("budget", str(run), "--metric", "pass", "--out", str(OUT / "budget"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "smollm2-135m" / "boxed"
        copy.mkdir(parents=True)
        for name in ("manifest.json", "problems.jsonl", "samples.jsonl", "batches.jsonl"):
            shutil.copy2(run / name, copy / name)
        m1eval("grade", str(copy), "--extraction", "boxed")
        m1eval("report", str(copy), "--format", "markdown", "--output", str(OUT / "report-boxed.md"))


if __name__ == "__main__":
    main()
