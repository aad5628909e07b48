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
# - `M1EVAL_NB_RESAMPLES`: sign flips of the paired test's p-value (default 1000);
# - `M1EVAL_NB_BUDGETS`: time budgets in seconds, separated by `:` (default: log-spaced).
#
# Run it headless with `python notebooks/execute.py notebooks/scaling_under_a_clock.py`
# (writes the executed `.ipynb` beside it), or open it in Jupyter with jupytext installed.

# %%
import os
from glob import glob
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from m1eval.analysis.budget import match_profile
from m1eval.analysis.budget import tables as bt
from m1eval.analysis.budget.study import write_budget_tables
from m1eval.analysis.comparable import difference_lines, run_differences
from m1eval.analysis.curves import metric_curve
from m1eval.analysis.per_problem import per_problem_frame
from m1eval.analysis.problemsets import shared_by_task
from m1eval.figures import plots
from m1eval.throughput.bench import profile_rows

RUNS = [p for p in os.environ.get("M1EVAL_NB_RUNS", "results").split(os.pathsep) if p]
PROFILES = [p for p in os.environ.get("M1EVAL_NB_PROFILES", "").split(os.pathsep) if p] or sorted(
    glob("results/bench/*.json")
)
OUT = Path(os.environ.get("M1EVAL_NB_OUT", "figures"))
RESAMPLES = int(os.environ.get("M1EVAL_NB_RESAMPLES", "1000"))
BUDGETS = [float(b) for b in os.environ.get("M1EVAL_NB_BUDGETS", "").split(os.pathsep) if b]
OUT.mkdir(parents=True, exist_ok=True)
# How the budget curves are priced: `m1eval budget`'s defaults (recorded in budget.json).
SETTINGS = bt.BudgetSettings(sign_flips=RESAMPLES)


def show(fig, name: str) -> None:
    """Save the figure (PNG, the file a paper would use) and show exactly that file."""
    display(Image(filename=str(plots.save(fig, OUT, name))))


def show_table(table: bt.TextTable) -> None:
    """A table of `m1eval budget` (the same function made it), with its title."""
    display(Markdown(f"**{table.title}**"))
    display(table.to_frame())
    if table.caption:  # what the letters of a verdict table stand for
        print(table.caption)


# Each run folder once, the profiles, and one unique label per run (model, or model/run-id when
# a task has two runs of one model): what `m1eval budget` and `m1eval plot` load, in every table below.
inputs = bt.load_inputs(RUNS, PROFILES)
runs, labels, profiles = inputs.runs, inputs.labels, inputs.profiles
for warning in inputs.warnings:
    print(f"warning: {warning}")
print(f"{len(runs)} runs, {len(profiles)} throughput profiles; figures and tables go to {OUT}/")
# Every figure compares the runs of a task on the problems all of them scored (as `m1eval plot`
# does), and says under it how the runs differ (token budget, prompt, grading, hardware).
shared, _coverage, COVERAGE = shared_by_task(runs, labels)
NOTES = COVERAGE + [
    f"{task}: {line}"
    for task, group, names in inputs.groups()
    for line in difference_lines(run_differences(group, names))
]
for note in NOTES:
    print(f"note: {note}")

# %% [markdown]
# ## The runs

# %%
overview = pd.DataFrame(
    [
        {
            "task": run.task,
            "label": label,
            "model": run.model,
            "run": run.run_id,
            "problems": len(run.problem_ids),
            "n": run.n,
            "mean tokens": run.frame["completion_tokens"].mean(),
            "truncated %": 100 * (run.frame["finish_reason"] == "length").mean(),
            "no answer %": 100 * run.frame["answer"].isna().mean(),
            "profile": getattr(match_profile(run, profiles), "name", None),
        }
        for run, label in zip(runs, labels)
    ]
)
overview.to_csv(OUT / "runs.csv", index=False)
display(overview)

# %% [markdown]
# ## Accuracy against the number of samples: pass@k and maj@k
#
# Every point is the exact expectation over random k-subsets of all n stored samples;
# bands are 95% score intervals over problems (closed-form; docs/statistics.md).

# %%
curves = {
    m: [metric_curve(run, m, sign_flips=RESAMPLES, label=label) for run, label in zip(shared, labels)]
    for m in ("pass", "maj")
}
table = pd.concat(
    [
        pd.DataFrame(
            {
                "task": c.task,
                "model": c.label,
                "metric": f"{m}@k",
                "k": c.ks,
                "accuracy %": 100 * c.accuracy,
                "ci low": 100 * c.low,
                "ci high": 100 * c.high,
            }
        )
        for m, cs in curves.items()
        for c in cs
    ]
)
table.to_csv(OUT / "curves.csv", index=False)
display(table.round(1))
for m, name in (("pass", "passk"), ("maj", "majk")):
    show(plots.figure_metric(curves[m], notes=NOTES), name)

# %% [markdown]
# ## Parallel scaling under a clock
#
# Producing k samples of every problem costs k x (each problem's mean completion length,
# summed over problems) / throughput. Throughput comes from the model's profile at its peak
# batch when one matches the run, else from the run's own measured batches. The runs of a
# task are priced, ranked and compared on the problems all of them scored; a budget buys
# each run the largest k that fits; accuracies within 1e-9 are a tie. This is exactly
# `m1eval budget` (same library functions, same tables and files).

# %%
budget_results = []
for _task, group, group_labels in inputs.groups():
    budget_results.append(bt.task_budget(group, profiles, SETTINGS, BUDGETS, labels=group_labels))
budget_curves = [curve for result in budget_results for curve in result.curves]
for result in budget_results:
    for curve in result.curves:
        show_table(bt.curve_table(curve, bt.used_ks(result, curve), level=SETTINGS.level))
# the time budget's notes: the clocks' hardware, not where the runs were generated (as `m1eval plot`)
budget_notes = COVERAGE + [f"{r.task}: {line}" for r in budget_results for line in difference_lines(r.differences)]
show(plots.figure_budget(budget_curves, notes=budget_notes), "budget")

# %%
for result in budget_results:
    for line in result.warnings:
        print(f"{result.task}: warning: {line}")
    if result.verdicts:
        show_table(bt.verdict_table(result, level=SETTINGS.level))
    for line in bt.verdict_lines(result):  # the footnote for held accuracies, the notes, every change of leader
        print(f"{result.task}: {line}")

# %% [markdown]
# ## Sequential scaling: accuracy against the maximum generation length
#
# Each completion is cut after its first L tokens and re-graded; an answer the cut
# removes counts as no answer. The time for L tokens comes from the profile's
# generation-length sweep.

# %%
length_curves = [bt.length_curve(run, profiles, SETTINGS, label=label) for run, label in zip(shared, labels)]
length_frames = [c.to_frame() for c in length_curves]
for curve in length_curves:
    show_table(bt.length_table(curve, level=SETTINGS.level))
show(plots.figure_length(length_curves, notes=NOTES), "length")

# %% [markdown]
# ## Per problem: two runs side by side
#
# `m1eval report --per-problem -f csv` writes this table (one row per run and problem: pass@1,
# pass@k and maj@k at the run's k, clusters, the majority answer and whether it is right,
# no-answer and truncation shares, mean tokens). A scatter of two runs of a task is one pivot:
# each point is a problem, above the diagonal where the second run solves it more often.

# %%
problems = per_problem_frame(runs, labels)
problems.to_csv(OUT / "per_problem.csv", index=False)
pairs = [(task, names[:2]) for task, _group, names in inputs.groups() if len(names) >= 2]
if pairs:
    task, (x, y) = pairs[0]
    wide = problems[problems["task"] == task].pivot(index="problem_id", columns="label", values="pass@1").dropna()
    ax = wide.plot.scatter(x=x, y=y, alpha=0.6, figsize=(3.4, 3.2), title=f"{task}, {len(wide)} problems: pass@1")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=1, linestyle=":")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    show(ax.get_figure(), "per_problem")
else:
    print("one run per task: no per-problem scatter")

# %% [markdown]
# ## Budget tables
#
# `budget_curves.csv`, `budget_verdicts.csv`, `length_curves.csv` and `budget.json`: the files,
# and the schema, that `m1eval budget RUN... --sequential --out DIR` writes.

# %%
for path in write_budget_tables(OUT, budget_results, SETTINGS.as_dict(), length_frames):
    print("written:", path.name)

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
