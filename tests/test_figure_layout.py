"""Every figure type with 1, 2 and 5 runs, at a column's and at the page's width (issue 23).

Each figure is made as ``m1eval plot`` makes it (runs of a task cut to their shared problems,
the coverage note under the figure) and inspected through its artists' window extents:

- every panel says how many problems it shows (title, or each legend entry);
- no legend overlaps a line, a band, an error bar or another axes' data area, and no text
  label overlaps another or leaves its axes; nothing sticks out of the figure (the saved
  image, cropped to what is drawn, is no wider than the figure);
- the runs of a panel have colours a reader tells apart (a model's two runs included);
- percent axes step by 1, 2 or 5 (times a power of ten) and every tick label is distinct.
"""

from __future__ import annotations

import itertools
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import pytest
from helpers.figure_inputs import fake_profile
from matplotlib.collections import Collection
from matplotlib.lines import Line2D

from m1eval.analysis.budget import match_profile
from m1eval.analysis.budget.sequential import sequential_curve
from m1eval.analysis.budget.study import run_labels, task_curves
from m1eval.analysis.curves import metric_curve
from m1eval.analysis.problemsets import shared_by_task
from m1eval.figures import plots
from m1eval.figures import style as ps
from m1eval.grading import Grader
from m1eval.rundir.rundata import load_run
from m1eval.rundir.synthetic import make_synthetic_run

SIGN_FLIPS = 50
# (model, accuracy, problems, run id, seconds per batch): five runs, two of one model, on different problems
RUNS = [
    ("m1", 0.35, 24, None, 2.0),
    ("r1-qwen-1.5b", 0.5, 22, None, 6.0),
    ("m1", 0.55, 20, "second", 8.0),
    ("llama-3.2-3b", 0.25, 18, None, 5.0),
    ("qwen-other", 0.45, 16, None, 3.0),
]
PROFILES = [("m1", 300, 64, None), ("r1-qwen-1.5b", 100, 8, 64), ("llama-3.2-3b", 80, 16, None)]
PROFILES += [("qwen-other", 150, 32, None), ("fake-e", 50, 64, None)]
COUNTS = (1, 2, 5)
SIZES = ("single", "double")


@pytest.fixture(autouse=True, scope="module")
def close_figures():
    """The module's figures (shared by its tests) are closed after its last test: pyplot keeps
    figures until closed, and the next test file in this worker should not inherit them."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def run_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    sets = {}
    for count in COUNTS:
        paths = [
            make_synthetic_run(
                root / str(count),
                task="aime25",
                model=model,
                accuracy=accuracy,
                n_problems=problems,
                n_samples=8,
                seed=i + 1,
                batch_seconds=seconds,
                run_id=run_id,
                max_tokens=4096,
                tokens_per_sample=1500,
            )
            for i, (model, accuracy, problems, run_id, seconds) in enumerate(RUNS[:count])
        ]
        runs = [load_run(path) for path in paths]
        sets[count] = (runs, run_labels(runs), [fake_profile(*spec) for spec in PROFILES[:count]])
    return sets


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=1) as g:
        yield g


_CACHE: dict = {}


def make_figures(run_sets, grader, count: int, size: str) -> dict:
    """The five figures of ``m1eval plot --figure all --size SIZE`` for ``count`` runs (cached per module)."""
    key = (count, size)
    if key in _CACHE:
        return _CACHE[key]
    runs, labels, profiles = run_sets[count]
    cut, _coverage, notes = shared_by_task(runs, labels)
    figures = {
        f"{metric}k": plots.figure_metric(
            [metric_curve(r, metric, sign_flips=SIGN_FLIPS, label=label) for r, label in zip(cut, labels)],
            size=size,
            notes=notes,
        )
        for metric in ("pass", "maj")
    }
    priced = task_curves(runs, profiles, metric="maj", sign_flips=SIGN_FLIPS, labels=labels)
    figures["budget"] = plots.figure_budget(priced.curves, size=size, notes=notes)
    lengths = [
        sequential_curve(
            r,
            lengths=[256, 1024, 4096],
            grader=grader,
            sign_flips=SIGN_FLIPS,
            label=label,
            profile=match_profile(r, profiles),
        )
        for r, label in zip(cut, labels)
    ]
    figures["length"] = plots.figure_length(lengths, size=size, notes=notes)
    figures["throughput"] = plots.figure_throughput(profiles, size=size)
    shared = len(priced.coverage.shared)
    _CACHE[key] = (figures, shared)
    return _CACHE[key]


CASES = [(count, size) for count in COUNTS for size in SIZES]


def _panels(fig):
    return [ax for ax in fig.axes if ax.axison]


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def _data_extents(fig, renderer):
    """Window extents of every drawn line, band and error bar of every axes."""
    boxes = []
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.collections]:
            if not artist.get_visible():
                continue
            if isinstance(artist, Line2D) and len(artist.get_xdata()) == 0:
                continue
            if isinstance(artist, Collection) and not artist.get_paths():
                continue
            box = artist.get_window_extent(renderer)
            if box.width > 0 or box.height > 0:
                boxes.append((artist, box))
    return boxes


def test_the_inputs_are_what_the_cases_claim(run_sets):
    """Five runs: two of one model (m1), problem sets of different sizes (the shared rule has work)."""
    runs, labels, _ = run_sets[5]
    assert labels == ["m1/synthetic-s1", "r1-qwen-1.5b", "m1/second", "llama-3.2-3b", "qwen-other"]
    assert sorted(len(r.problem_ids) for r in runs) == [16, 18, 20, 22, 24]


@pytest.mark.parametrize("count,size", CASES)
def test_every_panel_says_how_many_problems_it_shows(run_sets, grader, count, size):
    figures, shared = make_figures(run_sets, grader, count, size)
    for name, fig in figures.items():
        for ax in _panels(fig):
            if name == "throughput":  # random prompts, no problems: the title says so
                assert "random prompts" in ax.get_title() or "generation length" in ax.get_title()
                continue
            title, entries = ax.get_title(), _legend_texts(ax)
            in_title = f"{shared} problems" in title
            in_legend = entries and all("problems)" in entry for entry in entries)
            assert in_title or in_legend, f"{name} ({count} runs, {size}): {title!r} / {entries}"
            if count == 5:  # the runs scored 16 to 24 problems: every figure shows the 16 they share
                assert shared == 16 and in_title


@pytest.mark.parametrize("count,size", CASES)
def test_no_legend_or_label_covers_data(run_sets, grader, count, size, tmp_path):
    figures, _ = make_figures(run_sets, grader, count, size)
    for name, fig in figures.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        where = f"{name} ({count} runs, {size})"
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert len(legends) == len([ax for ax in _panels(fig) if ax.get_legend_handles_labels()[0]]), where
        data = _data_extents(fig, renderer)
        areas = [ax.get_window_extent(renderer) for ax in _panels(fig)]
        boxes = [legend.get_window_extent(renderer) for legend in legends]
        for box in boxes:
            for artist, extent in data:
                assert not box.overlaps(extent), f"{where}: the legend covers {artist}"
            for area in areas:
                assert not box.overlaps(area), f"{where}: a legend lies on an axes' data area"
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), where
        for ax in fig.axes:
            texts = [t for t in ax.texts if t.get_visible() and t.get_text()]
            extents = [t.get_window_extent(renderer) for t in texts]
            frame = ax.get_window_extent(renderer)
            for text, extent in zip(texts, extents):
                assert frame.x0 <= extent.x0 and extent.x1 <= frame.x1, f"{where}: {text.get_text()!r} leaves its axes"
                assert frame.y0 <= extent.y0 and extent.y1 <= frame.y1, f"{where}: {text.get_text()!r} leaves its axes"
            for i, a in enumerate(extents):
                for j in range(i + 1, len(extents)):
                    assert not a.overlaps(extents[j]), f"{where}: {texts[i].get_text()!r} on {texts[j].get_text()!r}"
        width = fig.get_figwidth()
        assert width == ps.SIZES[size], where
        path = plots.save(fig, tmp_path, f"{name}-{count}-{size}")
        pixels = mpimg.imread(path).shape[1]
        dpi = ps.rc(size)["savefig.dpi"]
        assert pixels <= (width + 0.1) * dpi, f"{where}: something sticks out of the figure ({pixels} px wide)"


@pytest.mark.parametrize("count,size", [(2, "double"), (5, "single"), (5, "double")])
def test_the_runs_of_a_panel_have_colours_a_reader_tells_apart(run_sets, grader, count, size):
    figures, _ = make_figures(run_sets, grader, count, size)
    for name, fig in figures.items():
        for ax in _panels(fig):
            handles, labels = ax.get_legend_handles_labels()
            colours = []
            for handle in handles:
                line = handle.lines[0] if hasattr(handle, "lines") else handle  # errorbar containers
                colours.append(line.get_color())
            assert len(colours) == count, (name, labels)
            for i, a in enumerate(colours):
                for j in range(i + 1, len(colours)):
                    assert ps.distinct_colours(a, colours[j]), f"{name}: {labels[i]} and {labels[j]} look alike"


def _step_ok(step_percent: float) -> bool:
    mantissa = step_percent / 10 ** math.floor(math.log10(step_percent))
    return any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10))


@pytest.mark.parametrize("count,size", CASES)
def test_percent_axes_step_by_one_two_or_five(run_sets, grader, count, size):
    figures, _ = make_figures(run_sets, grader, count, size)
    for name, fig in figures.items():
        if name == "throughput":
            continue
        fig.canvas.draw()
        for ax in _panels(fig):
            low, high = ax.get_ylim()
            ticks = [t for t in ax.yaxis.get_major_ticks() if low <= t.get_loc() <= high and t.label1.get_text()]
            values = [100 * t.get_loc() for t in ticks]
            texts = [t.label1.get_text() for t in ticks]
            assert len(values) >= 3 and all(text.endswith("%") for text in texts), (name, texts)
            steps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
            assert len(steps) == 1 and _step_ok(steps.pop()), (name, texts)
            assert len(set(texts)) == len(texts), f"{name}: tick labels repeat after rounding: {texts}"
            assert [float(text.rstrip("%")) for text in texts] == pytest.approx(values), (name, texts)


def test_a_zero_to_ten_percent_axis_reads_in_whole_steps():
    """The issue's length.png read '2%, 8%, 12%, 18%' for ticks every 2.5%."""
    fig, (ax,) = ps.new_figure(1)
    ax.plot([1, 2], [0.0, 0.1])
    ps.percent_axis(ax)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    shown = [t.label1.get_text() for t in ax.yaxis.get_major_ticks() if low <= t.get_loc() <= high]
    assert shown == ["0%", "2%", "4%", "6%", "8%", "10%"]
    ax.set_ylim(0, 0.01)
    ps.percent_axis(ax)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    shown = [t.label1.get_text() for t in ax.yaxis.get_major_ticks() if low <= t.get_loc() <= high]
    assert shown == ["0.0%", "0.2%", "0.4%", "0.6%", "0.8%", "1.0%"]


@pytest.mark.parametrize("count", COUNTS)
def test_time_budget_intervals_are_bars_not_boxes(run_sets, grader, count):
    """Shaded step bands of every run filled the axes; the intervals are error bars at k = 1, 2, 4, ..."""
    figures, _ = make_figures(run_sets, grader, count, "double")
    ax = figures["budget"].axes[0]
    from matplotlib.collections import LineCollection, PolyCollection

    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len([c for c in ax.collections if isinstance(c, LineCollection)]) == count  # one set of bars per run
    if count >= 2:
        assert plots.leader_strip(ax) is not None and not plots.leader_strip(ax).axison


@pytest.fixture(autouse=True, scope="module")
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    _CACHE.clear()
    plt.close("all")


@pytest.mark.parametrize("size", SIZES)
def test_a_long_note_goes_under_the_figure_not_over_the_data(run_sets, size):
    """Twelve lines of notes made constrained layout give up on a one-column figure: the note was
    drawn over the axes. The figure grows instead, and every panel keeps its data area's height."""
    runs, labels, _ = run_sets[5]
    curves = [metric_curve(r, "maj", sign_flips=SIGN_FLIPS, label=label) for r, label in zip(runs, labels)]
    notes = [f"note {i}: " + "the compared runs differ in a setting with a long description " * 3 for i in range(4)]
    fig = plots.figure_metric(curves, size=size, notes=notes)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    note = fig._supxlabel.get_window_extent(renderer)  # noqa: SLF001 - where matplotlib keeps it
    (ax,) = _panels(fig)
    assert not note.overlaps(ax.get_window_extent(renderer)) and not note.overlaps(ax.get_legend().get_window_extent())
    target = ps.AXES_HEIGHT[size] * (1.3 if size == "double" else 1.0)
    assert ax.get_position().height * fig.get_figheight() == pytest.approx(target, abs=0.02)
