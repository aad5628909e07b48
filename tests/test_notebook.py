"""The analysis notebook executes end to end (nbclient, ipykernel) on runs and a profile made here.

Inputs: one real run of a tiny random model through `m1eval run` (hf engine, aime25,
2 problems x 4 samples), its real throughput profile from `m1eval.bench`, and two
synthetic runs of two models on a shared task so the time-budget verdicts have
something to compare.
"""

from __future__ import annotations

import time

import matplotlib.image as mpimg
import pandas as pd
import pytest
from run_helpers import REPO, run_cli, tiny_model
from synthetic_runs import make_synthetic_run

from m1eval.bench import BenchSettings, run_bench
from m1eval.engines.hf import HFEngine

pytestmark = pytest.mark.slow
NOTEBOOK = REPO / "notebooks" / "scaling_under_a_clock.py"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data_dir):
    model = tiny_model(tmp_path_factory)
    root = tmp_path_factory.mktemp("nb-runs")
    result = run_cli("run", "-m", str(model), "--engine", "hf", "--task", "aime25", "--limit", "2", "--k", "4",
                     "--max-tokens", "32", "--out", str(root), "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    make_synthetic_run(root, task="synth", model="m1", accuracy=0.3, n_problems=8, n_samples=8, seed=1, batch_seconds=2)
    make_synthetic_run(root, task="synth", model="r1-qwen-1.5b", accuracy=0.5, n_problems=8, n_samples=8, seed=2, batch_seconds=6)
    engine = HFEngine(str(model))
    try:
        settings = BenchSettings(batch_sizes=[1, 2], prompt_len=8, gen_len=16, warmup=0, repeats=1, find_peak=False, gen_lens=[8, 16, 32])
        prof = run_bench(engine, settings, model=str(model), engine_name="hf", display_name=model.name)
    finally:
        engine.close()
    profile = prof.save(tmp_path_factory.mktemp("nb-prof") / "tiny.json")
    return root, profile


def test_notebook_rebuilds_every_figure_and_table(inputs, tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("nb_execute", REPO / "notebooks" / "execute.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    root, profile = inputs
    out = tmp_path / "figures"
    monkeypatch.setenv("M1EVAL_NB_RUNS", str(root))
    monkeypatch.setenv("M1EVAL_NB_PROFILES", str(profile))
    monkeypatch.setenv("M1EVAL_NB_OUT", str(out))
    monkeypatch.setenv("M1EVAL_NB_RESAMPLES", "100")
    started = time.perf_counter()
    notebook = runner.execute(NOTEBOOK, workdir=tmp_path, timeout=120)
    print(f"notebook executed in {time.perf_counter() - started:.1f} s")

    for name in ("passk", "majk", "budget", "length", "throughput"):
        image = mpimg.imread(out / f"{name}.png")
        assert (image[..., :3] < 0.95).any(axis=-1).mean() > 0.02, f"{name}.png is blank"
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["task"]) == ["aime25", "synth", "synth"]
    real = runs[runs["task"] == "aime25"].iloc[0]
    assert (real["problems"], real["n"], real["profile"]) == (2, 4, "tiny-qwen2")
    verdicts = pd.read_csv(out / "budget_verdicts.csv")
    assert set(verdicts["task"]) == {"synth"} and len(verdicts) == 6
    lengths = pd.read_csv(out / "length_curves.csv")
    tiny = lengths[lengths["task"] == "aime25"]
    assert tiny["max_tokens"].max() == 32 and tiny["seconds"].notna().all()  # priced by the profile
    speed = pd.read_csv(out / "throughput.csv")
    assert set(speed["sweep"]) == {"batch", "length"} and (speed["status"] == "ok").all()
    # Outputs of the executed notebook include the rendered figures.
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 5
