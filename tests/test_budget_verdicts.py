"""Budget verdicts on the situations real results folders produce (issue 16).

Each test runs ``m1eval budget`` (or the library) on one of the constructed examples in
``budget_runs.EXAMPLES``, whose accuracies and prices are worked out there on paper:
exact ties, two runs of one model, runs scored on different problems, three runs, a
budget that buys k = 3, the paper's fixed-length pricing, a --batch-size past the batch
that ran out of memory, and the JSON output.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.budget_runs import write_example, write_run
from typer.testing import CliRunner

from m1eval.cli.app import app
from m1eval.rundir.rundata import load_run
from m1eval.throughput.profile import Measurement, ThroughputProfile


def _budget(tmp_path, example: str, *extra: str):
    """Run ``m1eval budget`` on an example; return (flattened output, verdict table, curve table, JSON)."""
    folder, options = write_example(tmp_path / "runs", example)
    out = tmp_path / "tables"
    result = CliRunner().invoke(
        app, ["budget", str(folder), *options, *extra, "--sign-flips", "200", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    verdicts = pd.read_csv(out / "budget_verdicts.csv") if (out / "budget_verdicts.csv").exists() else None
    report = json.loads((out / "budget.json").read_text()) if (out / "budget.json").exists() else None
    return text, verdicts, pd.read_csv(out / "budget_curves.csv"), report


# ---------------------------------------------------------------------------- 1. exact ties


def test_equal_accuracies_tie_although_their_float_sums_differ(tmp_path):
    from m1eval.analysis.budget import Clock, compare_at_budget, crossovers, parallel_curve

    folder, _ = write_example(tmp_path, "tie")
    a, b = (load_run(folder / model / "hand") for model in ("A", "B"))
    ca = parallel_curve(a, Clock(37.5, "A"), "pass", sign_flips=100)
    cb = parallel_curve(b, Clock(50.0, "B"), "pass", sign_flips=100)
    # Both are 2/3 on paper. Whether two float sums of 2/3 differ depends on the platform's
    # summation order, so the rounding difference is made here: A's accuracy one ulp above B's.
    assert ca.accuracy[0] == pytest.approx(2 / 3) == cb.accuracy[0]
    ca.accuracy = ca.accuracy.copy()
    ca.accuracy[0] = np.nextafter(cb.accuracy[0], 1.0)
    assert ca.accuracy[0] > cb.accuracy[0]  # holds by construction on every platform
    verdict = compare_at_budget([ca, cb], 3.0, sign_flips=100)
    assert verdict.winner is None and verdict.tie and verdict.leaders == ["A", "B"]
    assert verdict.difference == 0.0 and verdict.runner_up is None
    assert verdict.diff_low <= 0 <= verdict.diff_high
    # B alone from 2 s; the tie from 2.67 s (A's first round); B at k=2 from 4 s; both at 1.0 from 8 s.
    assert crossovers(ca, cb) == [(pytest.approx(8 / 3), None), (4.0, "B"), (8.0, None)]


def test_cli_reports_the_tie_and_no_false_crossover(tmp_path):
    text, verdicts, _, _ = _budget(tmp_path, "tie")
    assert verdicts["winner"].isna().all() and verdicts["tie"].tolist() == [True]
    assert verdicts["difference"].tolist() == [0.0]
    assert " A=B " in text and "the runs tie" in text  # the leader column and its footnote
    assert "crossover: from 2.67 s on, A and B tie" in text
    assert "A is more accurate" not in text  # the old verdict, decided by rounding


# ---------------------------------------------------------------------------- 2. two runs of one model


def test_two_runs_of_one_model_keep_apart_in_tables_csv_json(tmp_path):
    text, verdicts, curves, report = _budget(tmp_path, "twins")
    assert {"k[m1/small]", "k[m1/large]", "acc[m1/small]", "acc[m1/large]"} <= set(verdicts.columns)
    assert verdicts["winner"].tolist() == ["m1/small", "m1/large"]
    assert verdicts["k[m1/small]"].tolist() == [4, 4] and verdicts["k[m1/large]"].tolist() == [0, 4]
    assert sorted(curves["model"].unique()) == ["m1/large", "m1/small"]
    assert "crossover: from 4 s on, m1/large is more accurate" in text
    assert [c["label"] for c in report["tasks"][0]["curves"]] == ["m1/large", "m1/small"]
    assert {c["model"] for c in report["tasks"][0]["curves"]} == {"m1"}


def test_run_labels(tmp_path):
    from m1eval.analysis.budget.study import run_labels

    one = load_run(write_run(tmp_path / "a", "m1", [[True]], run_id="r1"))
    two = load_run(write_run(tmp_path / "a", "m1", [[False]], run_id="r2"))
    other = load_run(write_run(tmp_path / "a", "llama", [[True]], run_id="r1"))
    elsewhere = load_run(write_run(tmp_path / "b", "m1", [[True]], run_id="r1", task="other"))
    copy = load_run(write_run(tmp_path / "c", "m1", [[True]], run_id="r1"))
    assert run_labels([one, two, other, elsewhere]) == ["m1/r1", "m1/r2", "llama", "m1"]
    assert run_labels([one, copy]) == ["m1/r1#1", "m1/r1#2"]


def test_one_folder_named_twice_is_one_run(tmp_path):
    folder, options = write_example(tmp_path, "kflip")
    x = folder / "X" / "hand"
    result = CliRunner().invoke(app, ["budget", str(folder), str(x), *options, "--sign-flips", "100"])
    assert result.exit_code == 0, result.output
    assert "X#" not in result.output and result.output.count("kflip · X:") == 1


# ---------------------------------------------------------------------------- 3. different problem sets


def test_runs_on_different_problems_are_compared_on_the_shared_ones(tmp_path):
    text, verdicts, curves, report = _budget(tmp_path, "shared")
    assert (verdicts["difference"] >= 0).all()  # the winner's lead is never negative
    assert (
        "note: the runs scored different problems (A: 6, B: 3); every run is priced, ranked and compared "
        "on the 3 problems all of them scored"
    ) in text
    # On p0..p2, A round costs 150 tok / 100 tok/s = 1.5 s: 3 s buy A k=2 (pass@2 = 2/3), B k=1 (1/2).
    row = verdicts.iloc[0]
    assert (row["k[A]"], row["k[B]"], row["problems"]) == (2, 1, 3)
    assert row["winner"] == "A" and row["difference"] == pytest.approx(1 / 6)
    assert set(curves["problems"]) == {3}
    assert report["tasks"][0]["problems"] == 3 and report["tasks"][0]["problems_scored"] == {"A": 6, "B": 3}


def test_library_refuses_curves_on_different_problems(tmp_path):
    from m1eval.analysis.budget import BudgetError, Clock, compare_at_budget, parallel_curve
    from m1eval.analysis.budget.study import on_shared_problems

    folder, _ = write_example(tmp_path, "shared")
    a, b = (load_run(folder / model / "hand") for model in ("A", "B"))
    curves = [parallel_curve(r, Clock(100.0, "t"), "pass", sign_flips=0) for r in (a, b)]
    with pytest.raises(BudgetError, match="A was scored on 6 problems and B on 3"):
        compare_at_budget(curves, 3.0, sign_flips=0)
    (ca, cb), coverage = on_shared_problems([a, b], ["A", "B"])
    assert coverage.shared == ["p0", "p1", "p2"] and ca.problem_ids == cb.problem_ids == ["p0", "p1", "p2"]
    disjoint = load_run(write_run(tmp_path / "d", "C", [[True]], task="shared", problem_ids=["p9"]))
    with pytest.raises(BudgetError, match=r"share no scored problem \(A: 6, C: 1\)"):
        on_shared_problems([a, disjoint], ["A", "C"])


# ---------------------------------------------------------------------------- 4. three or more runs


def test_every_change_of_leader_among_three_runs(tmp_path):
    text, verdicts, _, report = _budget(tmp_path, "three")
    assert "crossover: from 1 s on, B is more accurate" in text
    assert "crossover: from 4 s on, C is more accurate" in text
    assert "leader among A, B, C from the cheapest price (0.25 s): A is more accurate" in text
    assert report["tasks"][0]["leader_changes"] == [
        {"from_seconds": 0.25, "leaders": ["A"]},
        {"from_seconds": 1.0, "leaders": ["B"]},
        {"from_seconds": 4.0, "leaders": ["C"]},
    ]
    assert verdicts["winner"].tolist() == ["B", "C"] and verdicts["runner_up"].tolist() == ["A", "B"]
    # The notes behind the cells are printed: C cannot afford a sample at 1 s; A is out of samples at 4 s.
    assert "note: C: one sample of every problem costs 4 s; it scores 0 below that" in text
    assert "note: A: the budget buys more than the run's n=4 samples; accuracy held at k=4" in text


# ---------------------------------------------------------------------------- 5. any k


def test_a_budget_buys_the_largest_k_that_fits_not_a_power_of_two(tmp_path):
    text, verdicts, curves, _ = _budget(tmp_path, "kflip")
    row = verdicts.iloc[0]
    # 3 s buy X three rounds of 1 s: pass@3 = 0.75 against Y's pass@1 = 0.6 (at k = 2 it was 0.5: Y won).
    assert (row["k[X]"], row["k[Y]"]) == (3, 1)
    assert row["winner"] == "X" and row["difference"] == pytest.approx(0.15)
    assert curves.loc[curves["model"] == "X", "k"].tolist() == [1, 2, 3, 4]
    assert "3: 75.0" in text and "1: 60.0" in text  # the verdict table's cells


# ---------------------------------------------------------------------------- 6. the paper's pricing


def _profile(tmp_path, name: str, *, oom: int | None = None):
    measurements = [
        Measurement("batch", 4, 8, 64, wall_seconds=0.512, generated_tokens=256),  # 500 tok/s
        Measurement("batch", 8, 8, 64, wall_seconds=0.512, generated_tokens=512),  # 1000 tok/s (peak)
    ]
    if oom:
        measurements.append(Measurement("batch", oom, 8, 64, status="oom", error="CUDA out of memory"))
    return ThroughputProfile(model=f"org/{name}", engine="fake", display_name=name, measurements=measurements).save(
        tmp_path / f"{name}.json"
    )


def test_fixed_tokens_per_sample_prices_k_at_peak_throughput(tmp_path):
    prof = _profile(tmp_path, "X")
    text, _, curves, report = _budget(tmp_path, "kflip", "--profile", str(prof), "--tokens-per-sample", "8192")
    x = curves[curves["model"] == "X"]
    # The paper: 8192 tokens per sample over peak throughput; 5 problems, k samples each.
    assert x["seconds"].tolist() == pytest.approx([k * 5 * 8192 / 1000 for k in (1, 2, 3, 4)])
    assert set(x["pricing"]) == {"fixed 8,192 tok/sample"} and set(x["tokens_per_second"]) == {1000.0}
    y = curves[curves["model"] == "Y"]  # no profile: its own batches (100 tok/s), still 8192 tokens a sample
    assert y["seconds"].tolist() == pytest.approx([k * 5 * 8192 / 100 for k in (1, 2, 3, 4)])
    assert "profile X (fake) at batch 8, 1,000.0 tok/s, fixed 8,192 tok/sample" in text
    assert report["settings"]["tokens_per_sample"] == 8192


def test_fixed_tokens_per_sample_library_and_default_pricing(tmp_path):
    from m1eval.analysis.budget import Clock, parallel_curve
    from m1eval.analysis.curves import CurveError

    folder, _ = write_example(tmp_path, "kflip")
    run = load_run(folder / "X" / "hand")
    measured = parallel_curve(run, Clock(100.0, "t"), "pass", sign_flips=0)
    fixed = parallel_curve(run, Clock(100.0, "t"), "pass", sign_flips=0, tokens_per_sample=8192)
    assert measured.seconds.tolist() == pytest.approx([2.5 * k for k in (1, 2, 3, 4)])  # 5 x 50 tokens a round
    assert fixed.seconds.tolist() == pytest.approx([5 * 8192 / 100 * k for k in (1, 2, 3, 4)])
    assert (measured.pricing, fixed.pricing) == ("mean 50 tok/sample", "fixed 8,192 tok/sample")
    assert fixed.accuracy.tolist() == measured.accuracy.tolist()  # only the clock changes
    with pytest.raises(CurveError, match="tokens_per_sample must be positive"):
        parallel_curve(run, Clock(100.0, "t"), "pass", sign_flips=0, tokens_per_sample=0)


# ---------------------------------------------------------------------------- 7. warnings and JSON


def test_batch_size_at_or_above_the_oom_batch_warns(tmp_path):
    prof = _profile(tmp_path, "X", oom=16)
    text, _, _, report = _budget(tmp_path, "kflip", "--profile", str(prof), "--batch-size", "32")
    assert (
        "warning: X: batch size 32 is at or above batch 16, which ran out of memory in profile X; "
        "priced at the largest batch that ran, 8 (1,000.0 tok/s)"
    ) in text
    assert "warning: Y: batch size 32 does not apply to Y" in text
    assert report["tasks"][0]["warnings"][0].startswith("X: batch size 32 is at or above batch 16")
    quiet = CliRunner().invoke(
        app,
        [
            "budget",
            str(tmp_path / "runs" / "kflip" / "kflip"),
            "--profile",
            str(prof),
            "--batch-size",
            "6",
            "--sign-flips",
            "100",
        ],
    )
    assert "out of memory" not in quiet.output and "above the largest" not in quiet.output


def test_batch_size_warnings_outside_the_sweep():
    from m1eval.analysis.budget import batch_size_warnings, clock_from_profile

    prof = ThroughputProfile(
        model="org/t",
        engine="fake",
        measurements=[
            Measurement("batch", 4, 8, 64, wall_seconds=0.512, generated_tokens=256),
            Measurement("batch", 8, 8, 64, wall_seconds=0.512, generated_tokens=512),
        ],
    )
    assert batch_size_warnings(prof, 6) == [] and clock_from_profile(prof, 6).warnings == ()
    assert "above the largest batch profile t measured (8)" in batch_size_warnings(prof, 64)[0]
    assert "below the smallest batch profile t measured (4)" in batch_size_warnings(prof, 1)[0]
    assert clock_from_profile(prof).warnings == ()  # the peak is always measured


def test_json_output_matches_the_csv(tmp_path):
    _, verdicts, curves, report = _budget(tmp_path, "three")
    assert report is not None, "no budget.json beside the CSV files"
    text = (tmp_path / "tables" / "budget.json").read_text()
    assert "NaN" not in text  # strict JSON
    task = report["tasks"][0]
    assert [v["winner"] for v in task["verdicts"]] == verdicts["winner"].tolist()
    assert [v["difference"] for v in task["verdicts"]] == pytest.approx(verdicts["difference"].tolist())
    assert [m["k"] for m in task["verdicts"][0]["models"]] == [4, 1, 0]
    a = next(c for c in task["curves"] if c["label"] == "A")
    assert a["seconds"] == pytest.approx(curves.loc[curves["model"] == "A", "seconds"].tolist())
    assert report["settings"]["metric"] == "pass"


def test_bad_budget_is_one_line_error(tmp_path):
    folder, _ = write_example(tmp_path, "kflip")
    result = CliRunner().invoke(app, ["budget", str(folder), "--budget", "-1", "--sign-flips", "100"])
    assert result.exit_code == 2 and "error: --budget must be a positive number of seconds, got -1" in result.output


def test_a_tie_compares_the_tied_runs_in_input_order_and_three_way_leads(tmp_path):
    """B is 1e-16 below A (rounding): the tie still lists A, B in input order, and puts C after them."""
    from m1eval.analysis.budget import Clock, compare_at_budget, parallel_curve

    folder, _ = write_example(tmp_path, "tie")
    a, b = (load_run(folder / model / "hand") for model in ("A", "B"))
    c = load_run(write_run(tmp_path / "c", "C", [[True, False, False], [False, False, False]], task="tie"))
    curves = [parallel_curve(r, Clock(100.0, r.model), "pass", sign_flips=0) for r in (b, c, a)]
    verdict = compare_at_budget(curves, 1.0, sign_flips=0)
    assert verdict.leaders == ["B", "A"] and verdict.winner is None and verdict.difference == 0.0
    assert compare_at_budget(curves[:2], 1.0, sign_flips=0).runner_up == "C"


def test_an_error_in_one_task_keeps_the_tables_of_the_tasks_before_it(tmp_path):
    folder, _ = write_example(tmp_path, "kflip")
    bad = tmp_path / "bad"
    write_run(bad, "A", [[True]], task="zz", problem_ids=["p0"])
    write_run(bad, "B", [[True]], task="zz", problem_ids=["p1"])
    out = tmp_path / "tables"
    result = CliRunner().invoke(
        app,
        [
            "budget",
            str(folder),
            str(bad),
            "--metric",
            "pass",
            "--budget",
            "3",
            "--sign-flips",
            "100",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "error: task zz: the runs share no scored problem (A: 1, B: 1); nothing to compare" in " ".join(
        result.output.split()
    )
    assert pd.read_csv(out / "budget_verdicts.csv")["task"].tolist() == ["kflip"]
    assert [t["task"] for t in json.loads((out / "budget.json").read_text())["tasks"]] == ["kflip"]


# ---------------------------------------------------------------------------- the tables are library functions


def test_the_verb_prints_the_library_tables(tmp_path):
    """`m1eval budget` prints exactly what budget_tables makes (the notebook shows the same tables)."""
    from m1eval.analysis.budget import tables as bt

    folder, _ = write_example(tmp_path / "runs", "twins")
    inputs = bt.load_inputs([folder, folder], [])  # a folder named twice is one set of runs
    assert len(inputs.runs) == 2 and inputs.labels == ["m1/large", "m1/small"]
    ((task, group, labels),) = inputs.groups()
    assert task == "twins"
    settings = bt.BudgetSettings(metric="pass", sign_flips=200)
    result = bt.task_budget(group, inputs.profiles, settings, [0.5, 4.0], labels=labels)
    tables = [bt.curve_table(curve, bt.used_ks(result, curve)) for curve in result.curves] + [bt.verdict_table(result)]
    cli = CliRunner().invoke(
        app, ["budget", str(folder), "--metric", "pass", "--budget", "0.5", "--budget", "4", "--sign-flips", "200"]
    )
    assert cli.exit_code == 0, cli.output
    lines = cli.output.splitlines()
    for table in tables:
        assert table.rows and table.title in " ".join(cli.output.split())
        for row in table.rows:  # each row is one printed line holding its cells in order
            assert any(_cells_in_order(line, row) for line in lines), (table.title, row)
    for line in bt.verdict_lines(result):
        assert line in lines
    assert table.to_frame().columns.tolist() == table.columns


def _cells_in_order(line: str, cells: list[str]) -> bool:
    at = 0
    for cell in cells:
        at = line.find(f" {cell} ", at)
        if at < 0:
            return False
        at += len(cell) + 1
    return True


@pytest.mark.parametrize("count", [2, 5])
def test_the_verdict_table_keeps_one_line_per_budget_at_100_columns(tmp_path, count):
    """Runs labelled model/run-id made every row of the verdict table wrap into four lines at 100 columns."""
    import io

    from rich.console import Console

    from m1eval.analysis.budget import tables as bt
    from m1eval.cli.budget import _print_table
    from m1eval.rundir.synthetic import make_synthetic_run

    for i in range(count):  # one model, long run ids: labels like 'smollm2-135m/levels1-2-t0.7-p1-max320-0'
        make_synthetic_run(
            tmp_path, model="smollm2-135m", run_id=f"levels1-2-t0.7-p1-max320-{i}", n_problems=6, n_samples=8,
            seed=i, batch_seconds=2.0 + i,
        )  # fmt: skip
    inputs = bt.load_inputs([tmp_path], [])
    ((_task, runs, labels),) = inputs.groups()
    result = bt.task_budget(runs, [], bt.BudgetSettings(sign_flips=100), labels=labels)
    table = bt.verdict_table(result)
    assert table.columns[1] == "A k: %" and table.caption.splitlines()[0] == f"A = {labels[0]}"
    out = io.StringIO()
    _print_table(table, Console(file=out, width=100, force_terminal=False))
    lines = out.getvalue().splitlines()
    import re

    body = [line for line in lines if re.match(r"\s*[\d.]+ (s|min|h)\s", line)]  # rows start with their budget
    assert len(body) == len(result.verdicts) == 6, lines  # one line per budget
    assert all(len(line) <= 100 for line in lines)
    assert [line for line in lines if line.startswith(("A = ", "B = "))] == [
        f"A = {labels[0]}",
        f"B = {labels[1]}",
    ]
