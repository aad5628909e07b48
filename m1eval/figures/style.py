"""One look for every m1eval figure: a model keeps its colour and marker in every plot.

Readers compare figures side by side (pass@k next to the time budget next to
throughput), so colour must identify the model, not the order in which runs were given.
Known models get fixed colours (M1 always red, as in the paper's figures); any other
name gets a colour from a stable hash of its name, identical across processes.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")  # files only: m1eval never opens windows (CI, servers, notebooks alike)

import matplotlib.pyplot as plt

from m1eval.models.presets import canonical

KNOWN_COLORS = {
    "m1": "#d62728",
    "r1-qwen-1.5b": "#1f77b4",
    "r1-qwen-7b": "#2ca02c",
    "r1-llama-8b": "#9467bd",
    "llama-3.2-3b": "#ff7f0e",
}
# For other names; fixed colours above are excluded so a new model never looks like M1.
FALLBACK_COLORS = [
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#843c39",
    "#7b4173",
    "#3182bd",
]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
}


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(canonical(name).encode(), digest_size=4).digest(), "little")


def model_color(name: str) -> str:
    key = canonical(name)
    return KNOWN_COLORS.get(key) or FALLBACK_COLORS[_hash(name) % len(FALLBACK_COLORS)]


def model_marker(name: str) -> str:
    key = canonical(name)
    if key in KNOWN_COLORS:
        return MARKERS[list(KNOWN_COLORS).index(key)]
    return MARKERS[_hash(name) % len(MARKERS)]


@contextmanager
def style():
    """Apply m1eval's rc settings for the figures created inside the block."""
    with plt.rc_context(RC):
        yield


def new_figure(ncols: int = 1, *, width: float = 5.2, height: float = 3.8):
    """A figure with ``ncols`` side-by-side axes (always a list) in m1eval's style."""
    with style():
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, layout="constrained")
    return fig, list(axes[0])


def percent_axis(ax) -> None:
    """Accuracy in %, on an axis that never shows impossible values.

    Call after plotting. Autoscaling centres a flat line, so a run that solved nothing
    would sit in the middle of an axis running from -5% to 5%; the axis starts at 0 (and
    stops at 100%) instead, and a flat 0 curve gets a 0-10% axis, with the line at the bottom.
    """
    from matplotlib.ticker import PercentFormatter

    low, high = ax.get_ylim()
    if high <= 0.0:  # nothing but zeros (bands included)
        high = 0.1
    ax.set_ylim(max(low, 0.0), min(high, 1.02))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _plain_number(value: float) -> str:
    """'0.5', '2', '30', '1,000', '20,000': a number as a reader writes it, never 10^3."""
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:.2g}"


def seconds_axis(ax, axis: str = "x") -> None:
    """Log-scaled time in plain seconds at 1-2-5 steps ('0.5', '2', '1,000'), not 10^3."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _p: _plain_number(v)))
    target.set_minor_formatter(NullFormatter())


def log2_axis(ax, axis: str = "x") -> None:
    """Log base 2 with plain integer tick labels (1, 2, 4, ... not 2^0, 2^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    target.set_major_locator(LogLocator(base=2))
    target.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 1 else f"{v:g}"))


def log_count_axis(ax, axis: str = "y") -> None:
    """Log scale for rates (tokens/s) with plain labels at 1-2-5 steps: '2,000' not '2x10^3'."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if v >= 1 else f"{v:.2g}"))
    target.set_minor_formatter(NullFormatter())
