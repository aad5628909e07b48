"""Paper figures from stored runs and throughput profiles.

Each ``figure_*`` function takes analysis objects (curves, profiles) and returns a
matplotlib ``Figure``, so tests and notebooks can inspect axes and legends; ``save``
writes it. Figures with several tasks get one panel per task. Every line carries its
confidence band and every axis its unit.
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


def _by_task(curves: Sequence) -> dict[str, list]:
    out: dict[str, list] = {}
    for curve in curves:
        out.setdefault(curve.task, []).append(curve)
    return out


def _band(ax, x, low, high, color: ColorType, step: str | None = None) -> None:
    ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0, step=step)


def figure_metric(curves: Sequence[MetricCurve], *, title: str | None = None, level: float = 0.95):
    """pass@k or maj@k against k on a log2 axis, one line per run, one panel per task."""
    if not curves:
        raise ValueError("no curves to plot")
    tasks = _by_task(curves)
    fig, axes = ps.new_figure(len(tasks))
    for ax, (task, group) in zip(axes, tasks.items()):
        for curve in group:
            color = ps.model_color(curve.label)
            ks = np.array(curve.ks, dtype=float)
            ax.plot(ks, curve.accuracy, color=color, marker=ps.model_marker(curve.label), label=curve.label)
            _band(ax, ks, curve.low, curve.high, color)
        metric = metric_info(group[0].metric).label
        ps.log2_axis(ax, "x")
        ps.percent_axis(ax)
        ax.set_xlabel("k (samples per problem)")
        ax.set_ylabel(f"{metric} (% of problems)")
        ax.set_title(f"{task}: {metric}, {ci_label(level)}")
        ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def figure_budget(curves: Sequence[BudgetCurve], *, title: str | None = None, mark_crossovers: bool = True):
    """Accuracy against the wall-clock seconds needed for k samples of every problem.

    Accuracy is a step function of the budget (a model keeps its accuracy until it can
    afford its next k), drawn with steps over every k; the steps at k = 1, 2, 4, ... are
    labelled. Lines are named by the curves' labels (unique per run); further runs of a
    model in a panel get a darker shade of its colour and another line style. Fixed-length
    pricing is named in the legend.
    """
    if not curves:
        raise ValueError("no curves to plot")
    tasks = _by_task(curves)
    fig, axes = ps.new_figure(len(tasks), width=5.8)
    for ax, (task, group) in zip(axes, tasks.items()):
        right = max(float(c.seconds[-1]) for c in group) * 1.6
        colors = _run_colors(group)
        for curve, style in zip(group, _run_styles(group)):
            color = colors[curve.label]
            x = np.append(curve.seconds, right)
            y, lo, hi = (np.append(v, v[-1]) for v in (curve.accuracy, curve.low, curve.high))
            label = f"{curve.label} ({curve.clock.tokens_per_second:,.0f} tok/s"
            label += f", {curve.pricing})" if curve.fixed_tokens is not None else ")"
            ax.step(x, y, where="post", color=color, linestyle=style, label=label)
            ax.plot(curve.seconds, curve.accuracy, linestyle="none", marker=ps.model_marker(curve.label), color=color)
            _band(ax, x, lo, hi, color, step="post")
            labelled = set(powers_of_two(max(curve.ks)))
            for k, s, a in zip(curve.ks, curve.seconds, curve.accuracy):
                if k in labelled:
                    ax.annotate(f"k={k}", (s, a), textcoords="offset points", xytext=(2, 4), fontsize=7, color=color)
        if mark_crossovers and len(group) >= 2:
            _mark_leaders(ax, group, left=min(float(c.seconds[0]) for c in group), right=right)
        metric = metric_info(group[0].metric).label
        ps.seconds_axis(ax, "x")
        ps.percent_axis(ax)
        ax.set_xlabel("wall-clock time for k samples of every problem (s)")
        ax.set_ylabel(f"{metric} (% of problems)")
        ax.set_title(f"{task}: {metric} under a time budget")
        ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


RUN_LINESTYLES = ["-", "--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1, 1, 1))]  # dotted ":" marks crossovers
TIE_COLOR = "0.6"


def _run_index(group: Sequence[BudgetCurve]) -> list[int]:
    """0 for each model's first run in the panel, 1 for its second, ..."""
    seen: dict[str, int] = {}
    out = []
    for curve in group:
        key = curve.model or curve.label
        out.append(seen.get(key, 0))
        seen[key] = out[-1] + 1
    return out


def _run_colors(group: Sequence[BudgetCurve]) -> dict[str, tuple[float, float, float]]:
    """Label -> colour: the model's fixed colour, darkened by 40% for each further run of it."""
    from matplotlib.colors import to_rgb

    out: dict[str, tuple[float, float, float]] = {}
    for curve, i in zip(group, _run_index(group)):
        base = np.array(to_rgb(ps.model_color(curve.model or curve.label)))
        r, g, b = (float(x) for x in base * 0.6 ** (i % 3))
        out[curve.label] = (r, g, b)
    return out


def _run_styles(group: Sequence[BudgetCurve]) -> list:
    """Solid for a model's first run, then dashed, dash-dot, ... for its other runs in the panel."""
    return [RUN_LINESTYLES[i % len(RUN_LINESTYLES)] for i in _run_index(group)]


def _mark_leaders(ax, group: Sequence[BudgetCurve], *, left: float, right: float) -> None:
    """A strip along the top coloured by the run that leads at each budget (grey where runs tie),
    with dotted lines at the changes. Text labels per change overlap when changes are close,
    so the strip carries the information and the legend names the colours."""
    segments = leader_segments(group)
    if len(segments) < 2:
        return
    colors = _run_colors(group)
    edges = [left, *(change.seconds for change in segments[1:]), right]
    for start, stop, change in zip(edges[:-1], edges[1:], segments):
        color = colors[change.leader] if change.leader is not None else TIE_COLOR
        ax.axvspan(start, stop, ymin=0.975, ymax=1.0, color=color, alpha=0.8, linewidth=0)
    for change in segments[1:]:
        ax.axvline(change.seconds, color="0.4", linestyle=":", linewidth=1)
    ax.annotate(
        "leader at each budget (grey: tie)", (0.01, 0.955), xycoords="axes fraction", fontsize=7, color="0.3", va="top"
    )


def figure_length(curves: Sequence[LengthCurve], *, title: str | None = None):
    """Accuracy against the maximum generation length L; a time panel when profiles price L."""
    if not curves:
        raise ValueError("no curves to plot")
    tasks = _by_task(curves)
    timed = any(c.seconds is not None for c in curves)
    fig, axes = ps.new_figure(len(tasks) * (2 if timed else 1))
    for i, (task, group) in enumerate(tasks.items()):
        ax = axes[i * (2 if timed else 1)]
        for curve in group:
            color = ps.model_color(curve.label)
            x = np.array(curve.lengths, dtype=float)
            ax.plot(x, curve.accuracy, color=color, marker=ps.model_marker(curve.label), label=curve.label)
            _band(ax, x, curve.low, curve.high, color)
        ps.log2_axis(ax, "x")
        ps.percent_axis(ax)
        ax.set_xlabel("maximum generation length L (tokens)")
        ax.set_ylabel("pass@1 (% of samples correct)")
        ax.set_title(f"{task}: accuracy vs token budget")
        ax.legend(loc="lower right")
        if timed:
            tax = axes[i * 2 + 1]
            if all(curve.seconds is None for curve in group):  # no profile prices this task's models
                tax.text(
                    0.5,
                    0.5,
                    f"{task}: no throughput profile for these models,\nso no decoding time",
                    ha="center",
                    va="center",
                    transform=tax.transAxes,
                    fontsize=9,
                    color="0.3",
                )
                tax.set_axis_off()
                continue
            for curve in group:
                if curve.seconds is None:
                    continue
                color = ps.model_color(curve.label)
                label = f"{curve.label} (batch {curve.batch_size})" if curve.batch_size else curve.label
                tax.plot(curve.seconds, curve.accuracy, color=color, marker=ps.model_marker(curve.label), label=label)
                _band(tax, curve.seconds, curve.low, curve.high, color)
            ps.seconds_axis(tax, "x")
            ps.percent_axis(tax)
            tax.set_xlabel("time to decode L tokens (s)")
            tax.set_ylabel("pass@1 (% of samples correct)")
            tax.set_title(f"{task}: accuracy vs decoding time")
            tax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def _speedups(ax, series: dict[str, dict[int, float]]) -> None:
    """Annotate, at each x all models share, the fastest line with its ratio to the slowest."""
    if len(series) < 2:
        return
    shared = set.intersection(*(set(points) for points in series.values()))
    if shared:
        ax.text(
            0.99,
            0.01,
            "speed-up ×r = fastest / slowest model",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.35",
        )
    for x in sorted(shared):
        rates = {name: points[x] for name, points in series.items()}
        fastest = max(rates, key=rates.__getitem__)
        slowest = min(rates, key=rates.__getitem__)
        if rates[slowest] <= 0:
            continue
        ratio = rates[fastest] / rates[slowest]
        ax.annotate(
            f"×{ratio:.1f}",
            (x, rates[fastest]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
            fontweight="bold",
            color=ps.model_color(fastest),
        )


def _repeat_rates(m: Measurement) -> tuple[float, float]:
    """Tokens/s of a point's slowest and fastest repeat, the ends of its error bar (the mean's own rate when
    no repeats were kept); NaN for a point without generated tokens or wall time, as ``tokens_per_second``."""
    if m.generated_tokens is None or m.wall_seconds is None:
        return float("nan"), float("nan")
    seconds = m.repeat_seconds or [m.wall_seconds]
    return m.generated_tokens / max(seconds), m.generated_tokens / min(seconds)


def figure_throughput(profiles: Sequence[ThroughputProfile], *, title: str | None = None):
    """Tokens/s against batch size and against generation length; speed-up ratios marked."""
    if not profiles:
        raise ValueError("no profiles to plot")
    fig, (bax, lax) = ps.new_figure(2)
    batch_series: dict[str, dict[int, float]] = {}
    length_series: dict[str, dict[int, float]] = {}
    length_batches = set()
    for prof in profiles:
        color, marker = ps.model_color(prof.name), ps.model_marker(prof.name)
        points = prof.points("batch")
        if points:
            x = [m.batch_size for m in points]
            y = [m.tokens_per_second for m in points]
            extremes = [_repeat_rates(m) for m in points]
            spread = [
                [m.tokens_per_second - slow for m, (slow, _) in zip(points, extremes)],
                [fast - m.tokens_per_second for m, (_, fast) in zip(points, extremes)],
            ]
            bax.errorbar(x, y, yerr=spread, color=color, marker=marker, capsize=2, label=f"{prof.name} ({prof.engine})")
            batch_series[prof.name] = dict(zip(x, y))
            peak = prof.peak
            bax.annotate(
                "peak",
                (peak.batch_size, peak.tokens_per_second),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color=color,
            )
        oom = prof.oom_batch_size
        if oom is not None:
            bax.axvline(oom, color=color, linestyle="--", linewidth=1, alpha=0.7)
            bax.annotate(
                f"{prof.name}: out of memory",
                (oom, 0.5),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                color=color,
                ha="right",
            )
        lpoints = prof.points("length")
        if lpoints:
            x = [m.gen_len for m in lpoints]
            y = [m.tokens_per_second for m in lpoints]
            lax.plot(x, y, color=color, marker=marker, label=f"{prof.name} (batch {lpoints[0].batch_size})")
            length_series[prof.name] = dict(zip(x, y))
            length_batches.add(lpoints[0].batch_size)
    _speedups(bax, batch_series)
    # Ratios across lengths only compare like with like: the same batch size for every model.
    if len(length_batches) == 1:
        _speedups(lax, length_series)
    settings = profiles[0].settings
    bax.set_title(
        f"throughput vs batch (prompt {settings.get('prompt_len', '?')}, gen {settings.get('gen_len', '?')} tokens)"
    )
    lax.set_title("throughput vs generation length" + (" (same batch)" if len(length_batches) == 1 else ""))
    for ax, xlabel in ((bax, "batch size (sequences)"), (lax, "generation length (tokens)")):
        ps.log2_axis(ax, "x")
        ps.log_count_axis(ax, "y")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("throughput (generated tokens/s)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
    if title:
        fig.suptitle(title)
    return fig


def save(fig, out_dir: str | os.PathLike[str], name: str, fmt: str = "png") -> Path:
    """Write the figure as ``out_dir/name.fmt`` and close it (figures hold memory)."""
    import matplotlib.pyplot as plt

    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"format must be png, pdf or svg, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.{fmt}"
    with ps.style():
        fig.savefig(path)
    plt.close(fig)
    return path
