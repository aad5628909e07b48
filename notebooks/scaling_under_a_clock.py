# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Test-time scaling under a clock
#
# This notebook rebuilds every figure and table of an m1eval study from stored run folders
# and throughput profiles; it never generates. Point it at your results with environment
# variables (or edit the cell below):
#
# - `M1EVAL_NB_RUNS`: run folders or result roots, separated by `:` (default `results`);
# - `M1EVAL_NB_PROFILES`: profile JSON files from `m1eval bench`, separated by `:`
#   (default: every `results/bench/*.json`);
# - `M1EVAL_NB_OUT`: where figures and CSV tables go (default `figures`);
# - `M1EVAL_NB_RESAMPLES`: bootstrap resamples per interval (default 1000);
# - `M1EVAL_NB_BUDGETS`: time budgets in seconds, separated by `:` (default: log-spaced).
#
# Run it headless with `python notebooks/execute.py notebooks/scaling_under_a_clock.py`
# (writes the executed `.ipynb` beside it), or open it in Jupyter with jupytext installed.

# %%
import os
from glob import glob
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from m1eval import plots
from m1eval.bench import profile_rows
from m1eval.budget import (
    clock_for,
    compare_at_budget,
    crossovers,
    default_budgets,
    match_profile,
    metric_curve,
    parallel_curve,
)
from m1eval.budget_sequential import sequential_curve
from m1eval.profile import ThroughputProfile
from m1eval.rundata import load_run
from m1eval.store import find_runs

RUNS = [p for p in os.environ.get("M1EVAL_NB_RUNS", "results").split(os.pathsep) if p]
PROFILES = [p for p in os.environ.get("M1EVAL_NB_PROFILES", "").split(os.pathsep) if p] or sorted(glob("results/bench/*.json"))
OUT = Path(os.environ.get("M1EVAL_NB_OUT", "figures"))
RESAMPLES = int(os.environ.get("M1EVAL_NB_RESAMPLES", "1000"))
BUDGETS = [float(b) for b in os.environ.get("M1EVAL_NB_BUDGETS", "").split(os.pathsep) if b]
OUT.mkdir(parents=True, exist_ok=True)



def show(fig, name: str) -> None:
    """Save the figure (PNG, the file a paper would use) and show exactly that file."""
    display(Image(filename=str(plots.save(fig, OUT, name))))


runs = [load_run(path) for path in find_runs(RUNS)]
profiles = [ThroughputProfile.load(path) for path in PROFILES]
print(f"{len(runs)} runs, {len(profiles)} throughput profiles; figures and tables go to {OUT}/")

# %% [markdown]
# ## The runs

# %%
overview = pd.DataFrame(
    [
        {
            "task": run.task,
            "model": run.model,
            "run": run.run_id,
            "problems": len(run.problem_ids),
            "n": run.n,
            "mean tokens": run.frame["completion_tokens"].mean(),
            "truncated %": 100 * (run.frame["finish_reason"] == "length").mean(),
            "no answer %": 100 * run.frame["answer"].isna().mean(),
            "profile": getattr(match_profile(run, profiles), "name", None),
        }
        for run in runs
    ]
)
overview.to_csv(OUT / "runs.csv", index=False)
display(overview)

# %% [markdown]
# ## Accuracy against the number of samples: pass@k and maj@k
#
# Every point is the exact expectation over random k-subsets of all n stored samples;
# bands are two-level bootstrap 95% intervals (problems, then samples).

# %%
curves = {m: [metric_curve(run, m, resamples=RESAMPLES) for run in runs] for m in ("pass", "maj")}
table = pd.concat(
    [
        pd.DataFrame({"task": c.task, "model": c.label, "metric": f"{m}@k", "k": c.ks, "accuracy %": 100 * c.accuracy,
                      "ci low": 100 * c.low, "ci high": 100 * c.high})
        for m, cs in curves.items()
        for c in cs
    ]
)
table.to_csv(OUT / "curves.csv", index=False)
display(table.round(1))
for m, name in (("pass", "passk"), ("maj", "majk")):
    show(plots.figure_metric(curves[m]), name)

# %% [markdown]
# ## Parallel scaling under a clock
#
# Producing k samples of every problem costs k x (tokens per sample, summed over
# problems) / throughput. Throughput comes from the model's profile at its peak batch
# when one matches the run, else from the run's own measured batches.

# %%
budget_curves = [parallel_curve(run, clock_for(run, profiles), "maj", resamples=RESAMPLES) for run in runs]
display(pd.concat([c.to_frame() for c in budget_curves]).round(3))
show(plots.figure_budget(budget_curves), "budget")

# %%
verdicts = []
by_task: dict[str, list] = {}
for curve in budget_curves:
    by_task.setdefault(curve.task, []).append(curve)
for task, group in by_task.items():
    if len(group) < 2:
        continue
    for seconds in BUDGETS or default_budgets(group):
        v = compare_at_budget(group, seconds, resamples=RESAMPLES)
        verdicts.append(
            {"task": task, "budget (s)": seconds, "winner": v.winner or "tie", "difference (pts)": 100 * v.difference,
             "ci low": 100 * v.diff_low, "ci high": 100 * v.diff_high, "p": v.p_value,
             **{f"k {m.label}": m.k for m in v.models}}
        )
    if len(group) == 2:
        for price, leader in crossovers(*group):
            print(f"{task}: from {price:.3g} s on, {leader} is more accurate")
verdict_table = pd.DataFrame(verdicts)
verdict_table.to_csv(OUT / "budget_verdicts.csv", index=False)
display(verdict_table.round(3))

# %% [markdown]
# ## Sequential scaling: accuracy against the maximum generation length
#
# Each completion is cut after its first L tokens and re-graded; an answer the cut
# removes counts as no answer. The time for L tokens comes from the profile's
# generation-length sweep.

# %%
length_curves = [sequential_curve(run, profile=match_profile(run, profiles), resamples=RESAMPLES) for run in runs]
length_table = pd.concat([c.to_frame() for c in length_curves])
length_table.to_csv(OUT / "length_curves.csv", index=False)
display(length_table.round(3))
show(plots.figure_length(length_curves), "length")

# %% [markdown]
# ## Throughput profiles

# %%
if profiles:
    speed = pd.DataFrame(profile_rows(profiles))
    speed.to_csv(OUT / "throughput.csv", index=False)
    display(speed.round(2))
    show(plots.figure_throughput(profiles), "throughput")
else:
    print("no profiles: run `m1eval bench` to add the throughput figure")

# %%
print("written:", ", ".join(sorted(p.name for p in OUT.iterdir())))
