"""One fixed set of stored runs and a profile for the analysis layer: what the notebook test and
``tests/output_snapshot.py`` (before/after comparisons of every table and figure) both read.

- a real run of a tiny random model through ``m1eval run`` (hf engine, aime25, 2 problems x 4
  samples, 32 tokens) and that model's real throughput profile from ``m1eval.throughput.bench``;
- three synthetic runs on a shared task, two of them of one model (labels must tell them apart);
- the hand-made exact tie of ``budget_runs.EXAMPLES["tie"]``.
"""

from __future__ import annotations

from pathlib import Path

from helpers.budget_runs import EXAMPLES, write_run
from helpers.run_helpers import run_cli
from m1eval.rundir.synthetic import make_synthetic_run


def write_analysis_inputs(runs: Path, model: Path, data_dir: Path, profile_path: Path) -> Path:
    """Write the runs under ``runs`` and the profile at ``profile_path``; returns the profile's path."""
    from m1eval.engines.hf import HFEngine
    from m1eval.throughput.bench import BenchSettings, run_bench

    result = run_cli(
        "run",
        "-m",
        str(model),
        "--engine",
        "hf",
        "--task",
        "aime25",
        "--limit",
        "2",
        "--k",
        "4",
        "--max-tokens",
        "32",
        "--out",
        str(runs),
        "--data-dir",
        str(data_dir),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    make_synthetic_run(runs, task="synth", model="m1", accuracy=0.3, n_problems=8, n_samples=8, seed=1, batch_seconds=2)
    make_synthetic_run(
        runs, task="synth", model="r1-qwen-1.5b", accuracy=0.5, n_problems=8, n_samples=8, seed=2, batch_seconds=6
    )
    make_synthetic_run(
        runs,
        task="synth",
        model="m1",
        accuracy=0.6,
        n_problems=8,
        n_samples=8,
        seed=3,
        batch_seconds=12,
        run_id="second",
    )
    # A: pass@1 2/3 at 2.67 s a round, B: pass@1 2/3 at 2 s a round; 50 tokens per sample.
    for spec in EXAMPLES["tie"][0]:
        rows = spec["correct"]
        write_run(
            runs,
            spec["model"],
            rows,
            task="tie",
            batch_seconds=spec["batch_seconds"],
            prefix_chars=[[{"16": 8, "32": 16}] * len(row) for row in rows],
        )
    engine = HFEngine(str(model))
    try:
        settings = BenchSettings(
            batch_sizes=[1, 2], prompt_len=8, gen_len=16, warmup=0, repeats=1, find_peak=False, gen_lens=[8, 16, 32]
        )
        profile = run_bench(engine, settings, model=str(model), engine_name="hf", display_name=model.name)
    finally:
        engine.close()
    return profile.save(profile_path)
