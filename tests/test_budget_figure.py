"""The time-budget figure on the issue-16 examples: unique run labels, every leader, ties, pricing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from helpers.budget_runs import write_example
from matplotlib.colors import to_rgb

from m1eval.analysis.budget.study import task_curves
from m1eval.figures import plots
from m1eval.figures import style as ps
from m1eval.rundir.rundata import load_run
from m1eval.rundir.store import find_runs


def _curves(tmp_path, example: str, **options):
    folder, _ = write_example(tmp_path, example)
    runs = [load_run(path) for path in find_runs([folder])]
    return task_curves(runs, [], metric="pass", sign_flips=50, **options).curves


def _strip(ax):
    spans = sorted((p for p in plots.leader_strip(ax).patches if p.get_alpha() == 0.8), key=lambda p: p.get_x())
    return [to_rgb(p.get_facecolor()) for p in spans]


def _line_color(ax, label):
    """The colour of the step line whose legend entry starts with ``label``."""
    (line,) = [line for line in ax.lines if line.get_label().startswith(f"{label} (")]
    return to_rgb(line.get_color())


def test_two_runs_of_one_model_are_two_lines_with_their_own_labels(tmp_path):
    curves = _curves(tmp_path, "twins")
    fig = plots.figure_budget(curves)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["m1/large (25 tok/s)", "m1/small (200 tok/s)"]
    steps = [line for line in ax.lines if line.get_label() in ("m1/large (25 tok/s)", "m1/small (200 tok/s)")]
    colors = [to_rgb(line.get_color()) for line in steps]
    assert colors[0] == to_rgb(ps.model_color("m1"))  # the model's colour, then a colour of its own
    # another colour, not a shade of it (the old darker shade, 0.6 x the colour, was one)
    assert ps.distinct_colours(colors[0], colors[1])
    assert steps[0].get_linestyle() != steps[1].get_linestyle()  # and another line style
    # small leads until 4 s, then large: two strip segments in the two runs' colours, a dotted change at 4 s.
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [4.0]
    assert _strip(ax) == [colors[1], colors[0]]


def test_three_runs_mark_every_leader_and_ties_in_grey(tmp_path):
    fig = plots.figure_budget(_curves(tmp_path, "three"))
    ax = fig.axes[0]
    assert sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":") == [1.0, 4.0]
    assert _strip(ax) == [_line_color(ax, m) for m in ("A", "B", "C")]
    assert len(set(_strip(ax))) == 3  # three runs, three colours (B and C hash to one colour: C gets another)

    tie = plots.figure_budget(_curves(tmp_path / "t", "tie")).axes[0]
    # B alone, tie, B, tie: the tie segments are grey.
    colors = _strip(tie)
    assert colors[1] == colors[3] == to_rgb(plots.TIE_COLOR) and colors[0] == colors[2] == _line_color(tie, "B")


def test_every_k_is_a_step_but_only_powers_of_two_are_labelled(tmp_path):
    curves = _curves(tmp_path, "kflip")
    ax = plots.figure_budget(curves).axes[0]
    assert [c.ks for c in curves] == [[1, 2, 3, 4], [1, 2, 3, 4]]
    assert sorted(t.get_text() for t in ax.texts if t.get_text().startswith("k=")) == [
        "k=1",
        "k=1",
        "k=2",
        "k=2",
        "k=4",
        "k=4",
    ]


def test_fixed_length_pricing_is_named_in_the_legend(tmp_path):
    ax = plots.figure_budget(_curves(tmp_path, "kflip", tokens_per_sample=8192)).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["X (250 tok/s, fixed 8,192 tok/sample)", "Y (100 tok/s, fixed 8,192 tok/sample)"]


def test_plot_command_budget_figure_uses_shared_problems_and_fixed_pricing(tmp_path):
    from typer.testing import CliRunner

    from m1eval.cli.app import app

    folder, _ = write_example(tmp_path, "shared")
    result = CliRunner().invoke(
        app,
        [
            "plot",
            str(folder),
            "--figure",
            "budget",
            "--metric",
            "pass",
            "--sign-flips",
            "0",
            "--tokens-per-sample",
            "100",
            "--out",
            str(tmp_path / "fig"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "the runs scored different problems (A: 6, B: 3)" in " ".join(result.output.split())
    assert (tmp_path / "fig" / "budget.png").exists()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
