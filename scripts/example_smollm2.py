"""Produce (or resume) the committed example result: SmolLM2-135M-Instruct on MATH500 levels 1-2.

Why a script and not one ``m1eval run`` line: the CLI selects problems only with
``--limit`` (the first N in published order), and the first N of MATH500 are mostly
levels 3-5, where a 135M model scores zero. The subset here is documented and
reproducible: **the first ``--problems`` MATH500 problems (published order) whose
``level`` is 1 or 2**. Everything else is the normal runner, so the result is a normal
run folder (``manifest.json`` records the subset rule under ``subset``; ``problems.jsonl``
holds the exact problems), and running the script again resumes it.

    PYTHONPATH=$PWD VLLM_CPU_KVCACHE_SPACE=1 nice -n 10 python scripts/example_smollm2.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from m1eval.cli.progress import RunProgress
from m1eval.pipeline.runner import RunConfig, generate, plan_run
from m1eval.rundir.store import RunStore
from m1eval.tasks.loader import content_hash

LEVELS = ("1", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=100, help="first N level-1/2 problems (published order)")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--chunk-size", type=int, default=128, help="samples per engine call (resume unit)")
    parser.add_argument("--no-grade", action="store_true")
    args = parser.parse_args()

    config = RunConfig(
        model="smollm2-135m",
        task="math500",
        k=args.k,
        max_tokens=args.max_tokens,
        data_dir=args.data_dir,
        out=args.out,
        chunk_size=args.chunk_size,
        # float32 and eager are the preset's vllm defaults; stated here so the run id stays put.
        engine_options={"dtype": "float32", "enforce_eager": True},
        # Not derived from --problems: a larger --problems extends the same run folder.
        run_id=f"levels1-2-t0.7-p1-max{args.max_tokens}",
        extend_problems=True,  # a larger --problems adds problems; stored ones must still match exactly
    )
    plan = plan_run(config)
    subset = [p for p in plan.problems if str(p.meta.get("level")) in LEVELS][: args.problems]
    if len(subset) < args.problems:
        raise SystemExit(f"only {len(subset)} MATH500 problems have level 1 or 2; asked for {args.problems}")
    plan.problems = subset
    outcome = generate(plan, observer=RunProgress())
    with RunStore(plan.path) as store:
        store.update_manifest(
            subset={
                "rule": f"first {args.problems} MATH500 problems in published order with level in {list(LEVELS)}",
                "problems": len(subset),
                "subset_hash": content_hash(subset),
                "produced_by": "scripts/example_smollm2.py",
            }
        )
    print(f"{outcome.state}: {outcome.stored}/{outcome.expected} samples in {outcome.path} {outcome.message}")
    if outcome.state == "done" and not args.no_grade:
        from m1eval.cli.progress import Bars
        from m1eval.pipeline.stages import grade_run

        with Bars("completions") as bars:
            grade_run(plan.path, progress=bars)


if __name__ == "__main__":
    main()
