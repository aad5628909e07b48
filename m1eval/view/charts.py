"""pass@k and maj@k of a run as SVG geometry (points, bands, ticks) for the template to draw.

The figure is drawn by the page itself (inline SVG, no script, no image file), so it
works the same served and exported; k is on a log2 axis as in ``m1eval plot``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from m1eval.analysis.metrics import metric_info
from m1eval.analysis.report import RunSummary

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 520, 260, 48, 110, 12, 36
COLOURS = {"pass": "#1f77b4", "maj": "#d62728"}


@dataclass
class Series:
    metric: str
    label: str
    colour: str
    line: str  # "x,y x,y ..." for <polyline points>
    band: str  # polygon of the interval
    dots: list[tuple[float, float, str]]  # x, y, tooltip


@dataclass
class Chart:
    width: int
    height: int
    series: list[Series]
    xticks: list[tuple[float, str]]
    yticks: list[tuple[float, str]]
    left: int
    right: int
    top: int
    bottom: int


def curve_chart(summary: RunSummary, metrics: tuple[str, ...] = ("pass", "maj")) -> Chart | None:
    curves = [summary.curves[m] for m in metrics if m in summary.curves]
    if not curves:
        return None
    kmax = max(int(c.ks.max()) for c in curves)
    right, bottom = WIDTH - PAD_RIGHT, HEIGHT - PAD_BOTTOM
    span = max(math.log2(kmax), 1.0)

    def x(k: float) -> float:
        return round(PAD_LEFT + (right - PAD_LEFT) * math.log2(k) / span, 1)

    def y(v: float) -> float:
        return round(bottom - (bottom - PAD_TOP) * min(max(v, 0.0), 1.0), 1)

    series = []
    for c in curves:
        pts = [(x(k), y(v)) for k, v in zip(c.ks, c.point)]
        upper = [(x(k), y(h)) for k, h in zip(c.ks, c.high)]
        lower = [(x(k), y(lo)) for k, lo in zip(c.ks, c.low)][::-1]
        label = metric_info(c.metric).label
        dots = [
            (px, py, f"{metric_info(c.metric).label_at(int(k))} = {100 * v:.1f}% [{100 * lo:.1f}, {100 * h:.1f}]")
            for (px, py), k, v, lo, h in zip(pts, c.ks, c.point, c.low, c.high)
        ]
        series.append(
            Series(
                c.metric,
                label,
                COLOURS.get(c.metric, "#555"),
                " ".join(f"{a},{b}" for a, b in pts),
                " ".join(f"{a},{b}" for a, b in upper + lower),
                dots,
            )
        )
    ks = [2**i for i in range(int(math.log2(kmax)) + 1)]
    return Chart(
        WIDTH,
        HEIGHT,
        series,
        [(x(k), str(k)) for k in ks],
        [(y(v / 100), f"{v}%") for v in range(0, 101, 25)],
        PAD_LEFT,
        right,
        PAD_TOP,
        bottom,
    )
