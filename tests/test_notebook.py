"""The analysis notebook executes end to end (nbclient, ipykernel) on runs and a profile made here.

Inputs: one real run of a tiny random model through `m1eval run` (hf engine, aime25,
2 problems x 4 samples), its real throughput profile from `m1eval.throughput.bench`, three
synthetic runs on a shared task (two of them of one model, so labels must tell them
apart), and the hand-made exact tie of ``budget_runs.EXAMPLES["tie"]``. The notebook's
budget tables must be those `m1eval budget --out` writes for the same runs.
"""

from __future__ import annotations

import json
import time

import matplotlib.image as mpimg
import pandas as pd
import pytest
from helpers.analysis_inputs import write_analysis_inputs
from helpers.run_helpers import REPO, run_cli, tiny_model

pytestmark = pytest.mark.slow
NOTEBOOK = REPO / "notebooks" / "scaling_under_a_clock.py"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("nb-runs")
    profile = write_analysis_inputs(
        root, tiny_model(tmp_path_factory), data_dir, tmp_path_factory.mktemp("nb-prof") / "tiny.json"
    )
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

    for name in ("passk", "majk", "budget", "length", "throughput", "per_problem"):
        image = mpimg.imread(out / f"{name}.png")
        assert (image[..., :3] < 0.95).any(axis=-1).mean() > 0.02, f"{name}.png is blank"
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["task"]) == ["aime25", "synth", "synth", "synth", "tie", "tie"]
    real = runs[runs["task"] == "aime25"].iloc[0]
    assert (real["problems"], real["n"], real["profile"]) == (2, 4, "tiny-qwen2")
    assert sorted(runs.loc[runs["task"] == "synth", "label"]) == ["m1/second", "m1/synthetic-s1", "r1-qwen-1.5b"]
    verdicts = pd.read_csv(out / "budget_verdicts.csv")
    assert sorted(verdicts["task"].unique()) == ["synth", "tie"] and len(verdicts) == 12
    synth = verdicts[verdicts["task"] == "synth"]
    assert synth[["acc[m1/second]", "acc[m1/synthetic-s1]", "acc[r1-qwen-1.5b]"]].notna().all().all()
    # Default budgets for "tie" are 2 s to 8 s log-spaced; at 3.48 s both runs afford k = 1 (2/3 each): a tie.
    tie = verdicts[(verdicts["task"] == "tie") & verdicts["tie"]]
    assert len(tie) >= 1 and tie["winner"].isna().all() and set(tie["leaders"]) == {"A | B"}
    printed = "".join(
        o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert "tie: crossover" in printed and "A and B tie" in printed and "None is more accurate" not in printed
    synth_labels = ", ".join(runs.loc[runs["task"] == "synth", "label"])  # every change of leader among all three
    assert f"synth: leader among {synth_labels}" in printed or f"synth: no crossover among {synth_labels}" in printed

    # The same runs through `m1eval budget --out` give the same tables and JSON.
    cli_out = tmp_path / "cli"
    result = run_cli(
        "budget", str(root), "-p", str(profile), "--sign-flips", "100", "--sequential", "--out", str(cli_out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("budget_curves.csv", "budget_verdicts.csv", "length_curves.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / name), pd.read_csv(cli_out / name), obj=name)
    assert json.loads((out / "budget.json").read_text()) == json.loads((cli_out / "budget.json").read_text())
    # The notebook shows the verb's tables (the same budget_tables functions made both): their titles match.
    shown = [
        o["data"]["text/markdown"].strip("*")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if "text/markdown" in o.get("data", {})
    ]
    flat = " ".join(result.stdout.split())
    assert any("most accurate run within each time budget" in title for title in shown)
    assert shown and all(title in flat for title in shown)
    lengths = pd.read_csv(out / "length_curves.csv")
    tiny = lengths[lengths["task"] == "aime25"]
    assert tiny["max_tokens"].max() == 32 and tiny["seconds"].notna().all()  # priced by the profile
    speed = pd.read_csv(out / "throughput.csv")
    assert set(speed["sweep"]) == {"batch", "length"} and (speed["status"] == "ok").all()
    # Outputs of the executed notebook include the rendered figures.
    images = [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 6
    # the per-problem table `m1eval report --per-problem` writes, and its scatter of two runs above
    per_problem = pd.read_csv(out / "per_problem.csv")
    assert per_problem.groupby("task").size().to_dict() == {"aime25": 2, "synth": 24, "tie": 4}
    assert {"pass@1", "maj@4", "majority_answer", "majority_correct", "clusters"} <= set(per_problem.columns)
