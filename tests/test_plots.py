"""Every figure kind renders from run folders made here; images are read back and inspected."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import pytest
from helpers.figure_inputs import fake_profile
from typer.testing import CliRunner

from m1eval.analysis.budget import Clock, parallel_curve
from m1eval.analysis.budget.sequential import sequential_curve
from m1eval.analysis.curves import metric_curve
from m1eval.cli.app import app
from m1eval.figures import plots
from m1eval.figures import style as ps
from m1eval.grading import Grader
from m1eval.rundir.rundata import load_run
from m1eval.rundir.synthetic import make_synthetic_run

RESAMPLES = 100


_profile = fake_profile


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    fast = make_synthetic_run(
        root, model="m1", accuracy=0.35, n_problems=12, n_samples=8, seed=1, tokens_per_sample=1500
    )
    slow = make_synthetic_run(
        root, model="r1-qwen-1.5b", accuracy=0.5, n_problems=12, n_samples=8, seed=2, tokens_per_sample=1500
    )
    other = make_synthetic_run(root, task="math500", model="m1", accuracy=0.6, n_problems=10, n_samples=4, seed=3)
    return root, fast, slow, other


@pytest.fixture(scope="module")
def runs(run_dirs):
    _, fast, slow, _ = run_dirs
    return load_run(fast), load_run(slow)


def _check_png(path):
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    rgb = image[..., :3]
    not_white = (rgb < 0.95).any(axis=-1).mean()
    assert not_white > 0.02, f"{path} is (nearly) blank: {not_white:.3%} non-white pixels"
    # Colour, not only black text: the model colours must be drawn.
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert (saturation > 0.3).mean() > 0.001


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("metric,label", [("pass", "pass@k"), ("maj", "maj@k")])
def test_metric_figure(runs, tmp_path, metric, label):
    curves = [metric_curve(r, metric, sign_flips=RESAMPLES) for r in runs]
    fig = plots.figure_metric(curves)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "k (samples per problem)"
    assert ax.get_ylabel() == f"{label} (% of problems)"
    assert ax.get_xscale() == "log"
    assert _legend(ax) == ["m1", "r1-qwen-1.5b"]
    # Lines keep the models' fixed colours; one CI band per model.
    colors = [matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()]
    assert colors == [ps.model_color("m1"), ps.model_color("r1-qwen-1.5b")]
    assert len(ax.collections) == 2
    _check_png(plots.save(fig, tmp_path, f"{metric}k"))


def test_budget_figure_marks_crossover(runs, tmp_path):
    fast, slow = runs
    curves = [
        parallel_curve(fast, Clock(4000.0, "t"), "maj", sign_flips=RESAMPLES),
        parallel_curve(slow, Clock(500.0, "t"), "maj", sign_flips=RESAMPLES),
    ]
    fig = plots.figure_budget(curves)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time for k samples of every problem (s)"
    assert ax.get_ylabel() == "maj@k (% of problems)"
    assert _legend(ax) == ["m1 (4,000 tok/s)", "r1-qwen-1.5b (500 tok/s)"]
    # k = 1, 2, 4, 8 of both curves carry a marker and an error bar; labels where they fit, never overlapping
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text().startswith("k=")]
    assert {t.get_color() for t in labels} == {ps.model_color("m1"), ps.model_color("r1-qwen-1.5b")}
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    from m1eval.analysis.budget import crossovers

    flips = crossovers(*curves)
    assert flips, "the fixture runs are built to cross over"
    dotted = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert sorted(line.get_xdata()[0] for line in dotted) == sorted(price for price, _ in flips)
    # The leader strip: one span per interval between crossovers, coloured by the leader.
    from matplotlib.colors import to_rgb

    from m1eval.figures import style as plot_style

    spans = [p for p in plots.leader_strip(ax).patches if p.get_alpha() == 0.8]
    assert len(spans) == len(flips) + 1
    leaders = [leader for _, leader in flips]
    span_colors = [to_rgb(p.get_facecolor()) for p in sorted(spans, key=lambda p: p.get_x())]
    assert span_colors[1:] == [to_rgb(plot_style.model_color(leader)) for leader in leaders]
    assert span_colors[0] != span_colors[1]
    path = plots.save(fig, tmp_path, "budget", "pdf")
    assert path.read_bytes().startswith(b"%PDF")


def test_length_figure_with_and_without_timing(runs, tmp_path):
    with Grader(workers=1) as grader:
        timed = sequential_curve(
            runs[0], grader=grader, profile=_profile("m1", 200, 16), sign_flips=RESAMPLES, lengths=[256, 1024, 4096]
        )
        plain = sequential_curve(runs[1], grader=grader, sign_flips=RESAMPLES, lengths=[256, 1024, 4096])
    fig = plots.figure_length([timed, plain])
    assert len(fig.axes) == 2
    ax, tax = fig.axes
    assert ax.get_xlabel() == "maximum generation length L (tokens)"
    assert ax.get_ylabel() == "pass@1 (% of samples correct)"
    assert _legend(ax) == ["m1", "r1-qwen-1.5b"]
    assert tax.get_xlabel() == "time to decode L tokens (s)"
    assert _legend(tax) == ["m1 (batch 4)"]  # only the profiled model has a time axis
    assert timed.accuracy[0] <= timed.accuracy[-1]  # cutting harder never helps here
    _check_png(plots.save(fig, tmp_path, "length"))


def test_length_figure_says_why_a_task_has_no_time_panel(runs, tmp_path):
    """A task whose models have no profile gets a note in its time panel, not an empty axes
    with an empty legend (matplotlib warned "No artists with labels" there)."""
    import dataclasses
    import warnings

    with Grader(workers=1) as grader:
        timed = sequential_curve(
            runs[0], grader=grader, profile=_profile("m1", 200, 16), sign_flips=RESAMPLES, lengths=[256, 1024]
        )
        plain = sequential_curve(runs[1], grader=grader, sign_flips=RESAMPLES, lengths=[256, 1024])
    other_task = dataclasses.replace(plain, task="other")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.figure_length([timed, other_task])
    assert len(fig.axes) == 4
    note = fig.axes[3]
    assert not note.axison and any("no throughput profile" in t.get_text() for t in note.texts)


def test_throughput_figure_marks_speedup_and_oom(tmp_path):
    fast, slow = _profile("m1", 300, 64), _profile("r1-qwen-1.5b", 100, 8, oom=64)
    fig = plots.figure_throughput([fast, slow])
    bax, lax = fig.axes
    assert bax.get_xlabel() == "batch size (sequences)" and lax.get_xlabel() == "generation length (tokens)"
    assert bax.get_ylabel() == lax.get_ylabel() == "throughput (generated tokens/s)"
    assert _legend(bax) == ["m1 (fake)", "r1-qwen-1.5b (fake; out of memory at batch 64)"]
    assert _legend(lax) == ["m1 (batch 4)", "r1-qwen-1.5b (batch 4)"]
    ratios = [t.get_text() for t in bax.texts if t.get_text().startswith("×")]
    # Shared batches 1, 4, 16: ratios 300/100, 1200/400, 4800/800.
    assert ratios == ["×3.0", "×3.0", "×6.0"]
    assert [t.get_text() for t in lax.texts if t.get_text().startswith("×")] == ["×3.0"] * 3
    _check_png(plots.save(fig, tmp_path, "throughput"))


def test_one_panel_per_task(run_dirs, runs):
    other = load_run(run_dirs[3])
    fig = plots.figure_metric([metric_curve(r, "pass", sign_flips=RESAMPLES) for r in (*runs, other)])
    assert [ax.get_title() for ax in fig.axes] == [
        "aime25, 12 problems: pass@k, 95% CI",
        "math500, 10 problems: pass@k, 95% CI",
    ]


def test_colours_are_stable_and_distinct():
    assert ps.model_color("M1-3B") == ps.model_color("togethercomputer/M1-3B") == ps.model_color("m1")
    assert ps.model_color("some/other-model") == ps.model_color("other-model")
    assert ps.model_color("other-model") not in ps.KNOWN_COLORS.values()
    palette = [*ps.KNOWN_COLORS.values(), *ps.FALLBACK_COLORS]
    assert all(ps.distinct_colours(a, b) for i, a in enumerate(palette) for b in palette[i + 1 :])
    assert not ps.distinct_colours("#d62728", "#801718")  # a darker shade of M1's red is not another colour
    # two runs of one model, two models whose hashes collide: four colours, the models' own kept
    looks = ps.run_looks([("m1", "m1/a"), ("m1", "m1/b"), ("B", "B"), ("C", "C"), ("r1-qwen-1.5b", "r1")])
    assert (looks["m1/a"].color, looks["r1"].color) == (ps.model_color("m1"), ps.model_color("r1-qwen-1.5b"))
    assert ps.model_color("B") == ps.model_color("C")  # the premise: their hashes collide
    colours = [look.color for look in looks.values()]
    assert all(ps.distinct_colours(a, b) for i, a in enumerate(colours) for b in colours[i + 1 :])
    assert len({look.marker for look in looks.values()}) == 5 and looks["m1/b"].linestyle != "-"


def test_plot_cli_writes_every_figure(run_dirs, tmp_path):
    root, *_ = run_dirs
    prof = _profile("m1", 300, 64).save(tmp_path / "m1.json")
    prof2 = _profile("r1-qwen-1.5b", 100, 8).save(tmp_path / "r1.json")
    out = tmp_path / "figs"
    result = CliRunner().invoke(
        app,
        [
            "plot",
            str(root / "aime25"),
            "--figure",
            "all",
            "--profile",
            str(prof),
            "--profile",
            str(prof2),
            "--out",
            str(out),
            "--sign-flips",
            "100",
            "--lengths",
            "512,2048",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in plots.FIGURES:
        _check_png(out / f"{name}.png")


def _invoke(args):
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_plot_cli_errors_are_clear(run_dirs, tmp_path):
    root, *_ = run_dirs
    code, out = _invoke(["plot", str(root / "aime25"), "--figure", "throughput", "--out", str(tmp_path)])
    assert code != 0 and "needs --profile" in out
    code, out = _invoke(["plot", str(tmp_path / "nowhere"), "--figure", "passk"])
    assert code == 2 and "nowhere: no such run folder" in out
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    code, out = _invoke(["plot", "--figure", "throughput", "--profile", str(bad)])
    assert code == 2 and "bad.json: not a throughput profile" in out
    code, out = _invoke(["plot", str(root / "aime25"), "--figure", "speed"])
    assert code != 0 and "choose from passk" in out
    code, out = _invoke(["plot", str(root / "aime25"), "--figure", "passk", "--size", "a4"])
    assert code != 0 and "--size must be single or double, got 'a4'" in out


def test_plot_cli_sizes_figures_for_a_column_or_the_page(run_dirs, tmp_path):
    root, *_ = run_dirs
    widths = {}
    for size in ("single", "double"):
        code, out = _invoke(
            [
                "plot",
                str(root / "aime25"),
                "--figure",
                "majk",
                "--size",
                size,
                "--sign-flips",
                "0",
                "--out",
                str(tmp_path / size),
            ]
        )
        assert code == 0, out
        widths[size] = mpimg.imread(tmp_path / size / "majk.png").shape[1]
    dpi = ps.rc()["savefig.dpi"]
    for size, pixels in widths.items():  # the saved image is the figure's width (less the trimmed margin)
        assert ps.SIZES[size] * dpi * 0.9 <= pixels <= (ps.SIZES[size] + 0.1) * dpi, (size, pixels)


# ---------------------------------------------------------------------- issue 11 (14): honest axes


@pytest.fixture(scope="module")
def zero_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("zero")
    return load_run(make_synthetic_run(root, model="zero-model", accuracy=0.0, n_problems=6, n_samples=4, seed=5))


def test_all_zero_curve_is_drawn_on_an_axis_from_zero(zero_run, runs):
    """Autoscaling centred a flat 0% line on an axis from -5% to 5%."""
    curve = metric_curve(zero_run, "maj", sign_flips=RESAMPLES)
    # every estimate is 0; the interval for new problems still reaches above 0 (a score interval)
    assert max(curve.accuracy) == 0.0 and min(curve.low) == 0.0
    for fig in (
        plots.figure_metric([curve]),
        plots.figure_budget([parallel_curve(zero_run, Clock(1000.0, "t"), "maj", sign_flips=RESAMPLES)]),
    ):
        low, high = fig.axes[0].get_ylim()
        # from 0 (a sliver below it, so the line is not hidden in the spine, with no tick there) up
        assert -0.02 * high <= low <= 0.0 < high
        shown = _tick_labels(fig, fig.axes[0], "y")
        assert shown[0] == "0%" and not any(t.startswith(("-", "−")) for t in shown), shown
    # a curve that is not flat keeps its own (non-negative) range
    low, high = plots.figure_metric([metric_curve(runs[0], "pass", sign_flips=RESAMPLES)]).axes[0].get_ylim()
    assert -0.02 * high <= low < high <= 1.02


def _tick_labels(fig, ax, axis="x"):
    fig.canvas.draw()
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    return [
        t.get_text()
        for t in ticks
        if t.get_text() and lo <= (t.get_position()[0] if axis == "x" else t.get_position()[1]) <= hi
    ]


def test_time_axes_use_plain_seconds(runs):
    """Log time axes were labelled 10^1, 10^2 (mathtext); a reader wants 10, 100, 1,000 seconds."""
    fast, slow = runs
    curves = [
        parallel_curve(fast, Clock(4000.0, "t"), "maj", sign_flips=RESAMPLES),
        parallel_curve(slow, Clock(500.0, "t"), "maj", sign_flips=RESAMPLES),
    ]
    fig = plots.figure_budget(curves)
    labels = _tick_labels(fig, fig.axes[0])
    assert len(labels) >= 2, labels
    for label in labels:
        assert "$" not in label and "^" not in label, labels
        float(label.replace(",", ""))  # a plain number of seconds
    with Grader(workers=1) as grader:
        timed = sequential_curve(
            fast, grader=grader, profile=_profile("m1", 200, 16), sign_flips=RESAMPLES, lengths=[256, 1024, 4096]
        )
    fig = plots.figure_length([timed])
    tax = fig.axes[1]
    assert tax.get_xlabel() == "time to decode L tokens (s)"
    labels = _tick_labels(fig, tax)
    assert labels and all("$" not in label for label in labels), labels
