"""Paper figures from stored runs and throughput profiles.

Each ``figure_*`` function takes analysis objects (curves, profiles) and returns a
matplotlib ``Figure``, so tests and notebooks can inspect axes and legends; ``save``
writes it. Figures with several tasks get one panel per task. Every line carries its
confidence band (error bars on the time-budget steps) and every axis its unit.

What every figure says and how it is laid out (issue 23):

- **Problems.** Every panel's title says how many problems its curves average over; when
  the curves of a panel average over different numbers, each legend entry says its own.
  Callers comparing runs cut them to their shared problems first
  (``m1eval.analysis.problemsets.on_shared_problems``), as ``m1eval plot`` does.
- **Size.** ``size="single"`` (one column, 3.4 in, panels stacked) or ``"double"`` (page width,
  7 in, two panels a row); fonts follow.
- **Nothing covers data.** Legends sit below their axes; point labels (k, peak, speed-up) are
  placed where they overlap no other label, or left out; explanations and ``notes`` (how the
  compared runs differ, problems left out) go under the figure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from m1eval.analysis.budget import BudgetCurve, leader_segments
from m1eval.analysis.budget.sequential import LengthCurve
from m1eval.analysis.curves import MetricCurve
from m1eval.analysis.intervals import ci_label
from m1eval.analysis.metrics import metric_info, metric_names, powers_of_two
from m1eval.figures import style as ps
from m1eval.throughput.profile import Measurement, ThroughputProfile

if TYPE_CHECKING:
    from matplotlib.typing import ColorType

# One figure against k per priced curve metric of the registry ("passk": pass@k), then the others.
METRIC_FIGURES = {f"{name}k": name for name in metric_names(curves=True)}
FIGURES = (*METRIC_FIGURES, "budget", "length", "throughput")
SIZES = tuple(ps.SIZES)

TIE_COLOR = "0.6"
RUN_LINESTYLES = ps.RUN_LINESTYLES


def _by_task(curves: Sequence) -> dict[str, list]:
    out: dict[str, list] = {}
    for curve in curves:
        out.setdefault(curve.task, []).append(curve)
    return out


def _band(ax, x, low, high, color: ColorType, step: str | None = None, *, of: int = 1) -> None:
    """A curve's interval as a shaded band; with ``of`` bands in a panel each is lighter, so that
    where all of them overlap the stack stays see-through (at most 40% opaque) instead of a grey block."""
    alpha = min(0.15, 1 - 0.6 ** (1 / max(of, 1)))
    ax.fill_between(x, low, high, color=color, alpha=alpha, linewidth=0, step=step)


def _line_with_band(ax, x, curve, look: ps.RunLook, label: str, of: int) -> None:
    """A curve's accuracy as a line in its run's look, with its interval as a band under it."""
    ax.plot(x, curve.accuracy, color=look.color, marker=look.marker, linestyle=look.linestyle, label=label)
    _band(ax, x, curve.low, curve.high, look.color, of=of)


def _looks(curves: Sequence) -> dict[str, ps.RunLook]:
    return ps.run_looks([(getattr(c, "model", "") or c.label, c.label) for c in curves])


def problem_counts(counts: Sequence[int]) -> tuple[str, list[str]]:
    """Where a panel says its problem count: ('N problems', no per-line text) when its curves
    agree, else ('', ' (N problems)' for each curve's legend entry)."""
    if len(set(counts)) == 1:
        count = counts[0]
        return f"{count} problem{'s' if count != 1 else ''}", ["" for _ in counts]
    return "", [f" ({count} problems)" for count in counts]


def _title(task: str, what: str, count: str) -> str:
    return f"{task}, {count}: {what}" if count else f"{task}: {what}"


def _finish(fig, title: str | None, notes: Sequence[str], size: str, labels: dict, avoid: dict | None = None) -> None:
    """Legends below every axes, the title, the notes under the figure, then the point labels
    (last: they are placed against the settled layout)."""
    ticks = ps.rc(size)["xtick.labelsize"]
    for ax in fig.axes:
        ax.tick_params(labelsize=ticks)  # ticks made later (at save) keep this size's font
        if ax.get_legend_handles_labels()[0]:
            ps.legend_below(ax)
    if title:
        fig.suptitle(title)
    ps.figure_note(fig, notes, size=size)
    ps.wrap_titles(fig)
    ps.fit_height(fig, size)
    for ax, items in labels.items():
        ps.place_labels(ax, items, avoid=(avoid or {}).get(ax, ()))


def figure_metric(
    curves: Sequence[MetricCurve],
    *,
    title: str | None = None,
    level: float = 0.95,
    size: str = "double",
    notes: Sequence[str] = (),
):
    """pass@k or maj@k against k on a log2 axis, one line per run, one panel per task."""
    if not curves:
        raise ValueError("no curves to plot")
    tasks = _by_task(curves)
    looks = _looks(curves)
    with ps.style(size):
        fig, axes = ps.new_figure(len(tasks), size=size)
        for ax, (task, group) in zip(axes, tasks.items()):
            count, suffixes = problem_counts([c.problems for c in group])
            for curve, suffix in zip(group, suffixes):
                look = looks[curve.label]
                ks = np.array(curve.ks, dtype=float)
                _line_with_band(ax, ks, curve, look, curve.label + suffix, len(group))
            metric = metric_info(group[0].metric).label
            ps.log2_axis(ax, "x")
            ps.percent_axis(ax)
            ax.set_xlabel("k (samples per problem)")
            ax.set_ylabel(f"{metric} (% of problems)")
            ax.set_title(_title(task, f"{metric}, {ci_label(level)}", count))
        _finish(fig, title, notes, size, {})
    return fig


def figure_budget(
    curves: Sequence[BudgetCurve],
    *,
    title: str | None = None,
    mark_crossovers: bool = True,
    size: str = "double",
    notes: Sequence[str] = (),
    level: float = 0.95,
):
    """Accuracy against the wall-clock seconds needed for k samples of every problem.

    Accuracy is a step function of the budget (a model keeps its accuracy until it can
    afford its next k), drawn with steps over every k; the points at k = 1, 2, 4, ... carry
    a marker and their interval as an error bar, and are labelled where a label fits. Lines
    are named by the curves' labels (unique per run); a model's further runs get a colour,
    marker and line style of their own. Fixed-length pricing is named in the legend. With two
    or more runs a strip above the axes is coloured by the leader at each budget.
    """
    if not curves:
        raise ValueError("no curves to plot")
    tasks = _by_task(curves)
    looks = _looks(curves)
    notes = list(notes)
    labels: dict = {}
    points: dict = {}
    with ps.style(size):
        fig, axes = ps.new_figure(len(tasks), size=size)
        for ax, (task, group) in zip(axes, tasks.items()):
            right = max(float(c.seconds[-1]) for c in group) * 1.6
            count, suffixes = problem_counts([len(c.values) for c in group])
            first: list[ps.Label] = []
            rest: list[ps.Label] = []
            for curve, suffix in zip(group, suffixes):
                look = looks[curve.label]
                x = np.append(curve.seconds, right)
                y = np.append(curve.accuracy, curve.accuracy[-1])
                label = f"{curve.label} ({curve.clock.tokens_per_second:,.0f} tok/s"
                label += f", {curve.pricing})" if curve.fixed_tokens is not None else ")"
                ax.step(x, y, where="post", color=look.color, linestyle=look.linestyle, label=label + suffix)
                powers = set(powers_of_two(max(curve.ks)))
                marked = [i for i, k in enumerate(curve.ks) if k in powers]
                s, a = curve.seconds[marked], curve.accuracy[marked]
                low, high = curve.low[marked], curve.high[marked]
                ax.errorbar(
                    s,
                    a,
                    yerr=[np.maximum(a - low, 0), np.maximum(high - a, 0)],
                    fmt=look.marker,
                    color=look.color,
                    ecolor=look.color,
                    elinewidth=0.8,
                    capsize=1.5,
                    alpha=0.9,
                    markersize=ps.rc(size)["lines.markersize"],
                )
                for j, i in enumerate(marked):
                    item = ps.Label(f"k={curve.ks[i]}", (float(s[j]), float(a[j])), color=look.color)
                    (first if j in (0, len(marked) - 1) else rest).append(item)
            labels[ax] = first + rest
            points[ax] = [item.xy for item in labels[ax]]
            metric = metric_info(group[0].metric).label
            ps.seconds_axis(ax, "x")
            ps.percent_axis(ax)
            ax.set_xlim(right=right)
            ax.set_xlabel("time for k samples of every problem (s)")
            ax.set_ylabel(f"{metric} (% of problems)")
            ax.set_title(_title(task, f"{metric} under a time budget", count), pad=12 if len(group) > 1 else None)
            if mark_crossovers and len(group) >= 2:
                marked_strip = _mark_leaders(
                    ax, group, looks, left=min(float(c.seconds[0]) for c in group), right=right
                )
                if marked_strip and not any("leads at each budget" in n for n in notes):
                    notes.append(
                        "strip above the axes: the run that leads at each budget (grey: a tie); "
                        "dotted lines: changes of leader"
                    )
        notes.append(f"bars: {ci_label(level)} at k = 1, 2, 4, ...")
        _finish(fig, title, notes, size, labels, points)
    return fig


def _mark_leaders(ax, group: Sequence[BudgetCurve], looks: dict, *, left: float, right: float) -> bool:
    """A strip along the top, outside the data, coloured by the run that leads at each budget
    (grey where runs tie), with dotted lines at the changes. Text labels per change overlap when
    changes are close, so the strip carries the information and the legend names the colours."""
    segments = leader_segments(group)
    if len(segments) < 2:
        return False
    strip = ax.inset_axes((0.0, 1.01, 1.0, 0.035), sharex=ax)
    strip.set_axis_off()
    strip.set_ylim(0, 1)
    edges = [left, *(change.seconds for change in segments[1:]), right]
    for start, stop, change in zip(edges[:-1], edges[1:], segments):
        color = looks[change.leader].color if change.leader is not None else TIE_COLOR
        strip.axvspan(start, stop, ymin=0.0, ymax=1.0, color=color, alpha=0.8, linewidth=0)
    for change in segments[1:]:
        ax.axvline(change.seconds, color="0.4", linestyle=":", linewidth=1)
    return True


def leader_strip(ax):
    """The leader strip of a time-budget panel (an inset axes above it), or None."""
    return ax.child_axes[0] if ax.child_axes else None


def figure_length(
    curves: Sequence[LengthCurve],
    *,
    title: str | None = None,
    size: str = "double",
    notes: Sequence[str] = (),
):
    """Accuracy against the maximum generation length L; a time panel when profiles price L."""
    if not curves:
        raise ValueError("no curves to plot")
    tasks = _by_task(curves)
    looks = _looks(curves)
    timed = any(c.seconds is not None for c in curves)
    per_task = 2 if timed else 1
    with ps.style(size):
        fig, axes = ps.new_figure(len(tasks) * per_task, size=size)
        for i, (task, group) in enumerate(tasks.items()):
            ax = axes[i * per_task]
            count, suffixes = problem_counts([c.problems for c in group])
            for curve, suffix in zip(group, suffixes):
                look = looks[curve.label]
                x = np.array(curve.lengths, dtype=float)
                _line_with_band(ax, x, curve, look, curve.label + suffix, len(group))
            ps.log2_axis(ax, "x")
            ps.percent_axis(ax)
            ax.set_xlabel("maximum generation length L (tokens)")
            ax.set_ylabel("pass@1 (% of samples correct)")
            ax.set_title(_title(task, "accuracy vs token budget", count))
            if timed:
                tax = axes[i * per_task + 1]
                if all(curve.seconds is None for curve in group):  # no profile prices this task's models
                    tax.text(
                        0.5,
                        0.5,
                        f"{task}: no throughput profile for these models,\nso no decoding time",
                        ha="center",
                        va="center",
                        transform=tax.transAxes,
                        color="0.3",
                    )
                    tax.set_axis_off()
                    continue
                for curve, suffix in zip(group, suffixes):
                    if curve.seconds is None:
                        continue
                    look = looks[curve.label]
                    label = f"{curve.label} (batch {curve.batch_size})" if curve.batch_size else curve.label
                    _line_with_band(tax, curve.seconds, curve, look, label + suffix, len(group))
                ps.seconds_axis(tax, "x")
                ps.percent_axis(tax)
                tax.set_xlabel("time to decode L tokens (s)")
                tax.set_ylabel("pass@1 (% of samples correct)")
                tax.set_title(_title(task, "accuracy vs decoding time", count))
        _finish(fig, title, notes, size, {})
    return fig


def _speedups(series: dict[str, dict[int, float]], looks: dict) -> list[ps.Label]:
    """At each x all models share, a label 'xr' at the fastest line: its ratio to the slowest."""
    if len(series) < 2:
        return []
    shared = set.intersection(*(set(points) for points in series.values()))
    out = []
    for x in sorted(shared):
        rates = {name: points[x] for name, points in series.items()}
        fastest = max(rates, key=rates.__getitem__)
        slowest = min(rates, key=rates.__getitem__)
        if rates[slowest] <= 0:
            continue
        ratio = rates[fastest] / rates[slowest]
        out.append(ps.Label(f"×{ratio:.1f}", (x, rates[fastest]), color=looks[fastest].color, fontweight="bold"))
    return out


def _repeat_rates(m: Measurement) -> tuple[float, float]:
    """Tokens/s of a point's slowest and fastest repeat, the ends of its error bar (the mean's own rate when
    no repeats were kept); NaN for a point without generated tokens or wall time, as ``tokens_per_second``."""
    if m.generated_tokens is None or m.wall_seconds is None:
        return float("nan"), float("nan")
    seconds = m.repeat_seconds or [m.wall_seconds]
    return m.generated_tokens / max(seconds), m.generated_tokens / min(seconds)


SPEEDUP_OFFSETS = ((0, 5), (0, -5), (3, 3), (-3, 3), (3, -3), (-3, -3))


def figure_throughput(
    profiles: Sequence[ThroughputProfile],
    *,
    title: str | None = None,
    size: str = "double",
    notes: Sequence[str] = (),
):
    """Tokens/s against batch size and against generation length; speed-up ratios marked.

    Throughput is measured on random prompts, not on problems, so the titles give the
    prompt and generation lengths instead of a problem count.
    """
    if not profiles:
        raise ValueError("no profiles to plot")
    looks = ps.run_looks([(p.name, p.name) for p in profiles])
    notes = list(notes)
    with ps.style(size):
        fig, (bax, lax) = ps.new_figure(2, size=size)
        batch_series: dict[str, dict[int, float]] = {}
        length_series: dict[str, dict[int, float]] = {}
        length_batches = set()
        peaks: list[ps.Label] = []
        for prof in profiles:
            look = looks[prof.name]
            points = prof.points("batch")
            oom = prof.oom_batch_size
            name = f"{prof.name} ({prof.engine}" + (f"; out of memory at batch {oom})" if oom is not None else ")")
            if points:
                x = [m.batch_size for m in points]
                y = [m.tokens_per_second for m in points]
                extremes = [_repeat_rates(m) for m in points]
                spread = [
                    [m.tokens_per_second - slow for m, (slow, _) in zip(points, extremes)],
                    [fast - m.tokens_per_second for m, (_, fast) in zip(points, extremes)],
                ]
                bax.errorbar(
                    x, y, yerr=spread, color=look.color, marker=look.marker, linestyle=look.linestyle, capsize=2,
                    label=name,
                )  # fmt: skip
                batch_series[prof.name] = dict(zip(x, y))
                peak = prof.peak
                peaks.append(ps.Label("peak", (peak.batch_size, peak.tokens_per_second), color=look.color))
            elif oom is not None:  # nothing ran: the legend still says why
                bax.plot([], [], color=look.color, linestyle="--", label=name)
            if oom is not None:
                bax.axvline(oom, color=look.color, linestyle="--", linewidth=1, alpha=0.7)
            lpoints = prof.points("length")
            if lpoints:
                x = [m.gen_len for m in lpoints]
                y = [m.tokens_per_second for m in lpoints]
                lax.plot(
                    x, y, color=look.color, marker=look.marker, linestyle=look.linestyle,
                    label=f"{prof.name} (batch {lpoints[0].batch_size})",
                )  # fmt: skip
                length_series[prof.name] = dict(zip(x, y))
                length_batches.add(lpoints[0].batch_size)
        batch_labels = _speedups(batch_series, looks)
        # Ratios across lengths only compare like with like: the same batch size for every model.
        length_labels = _speedups(length_series, looks) if len(length_batches) == 1 else []
        if batch_labels or length_labels:
            notes.append("×r: throughput of the fastest model over the slowest at that point")
        if any(p.oom_batch_size is not None for p in profiles):
            notes.append("dashed vertical line: the batch size at which that model ran out of memory")
        settings = profiles[0].settings
        bax.set_title(
            f"throughput vs batch size\n(random prompts: {settings.get('prompt_len', '?')} tokens in, "
            f"{settings.get('gen_len', '?')} generated)"
        )
        batches = sorted(length_batches)
        lax.set_title(
            "throughput vs generation length\n"
            + (f"(batch {batches[0]} for every model)" if len(batches) == 1 else "(batch sizes differ: no ratios)")
        )
        for ax, xlabel in ((bax, "batch size (sequences)"), (lax, "generation length (tokens)")):
            ps.log2_axis(ax, "x")
            ps.log_count_axis(ax, "y")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("throughput (generated tokens/s)")
        _finish(fig, title, notes, size, {})  # then the labels, against the settled layout
        batch_points = [(x, y) for points in batch_series.values() for x, y in points.items()]
        ps.place_labels(bax, batch_labels, SPEEDUP_OFFSETS, avoid=batch_points)
        ps.place_labels(bax, peaks, avoid=batch_points)
        length_points = [(x, y) for points in length_series.values() for x, y in points.items()]
        ps.place_labels(lax, length_labels, SPEEDUP_OFFSETS, avoid=length_points)
    return fig


def save(fig, out_dir: str | os.PathLike[str], name: str, fmt: str = "png") -> Path:
    """Write the figure as ``out_dir/name.fmt`` and close it (figures hold memory)."""
    import matplotlib.pyplot as plt

    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"figure format must be png, pdf or svg, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.{fmt}"
    with ps.style():  # the save settings (dpi, tight box); fonts were fixed when the figure was made
        fig.savefig(path)
    plt.close(fig)
    return path
