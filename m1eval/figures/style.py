"""One look for every m1eval figure: a model keeps its colour and marker in every plot.

Readers compare figures side by side (pass@k next to the time budget next to
throughput), so colour must identify the model, not the order in which runs were given.
Known models get fixed colours (M1 always red, as in the paper's figures); any other
name gets a colour from a stable hash of its name, identical across processes. Within one
figure every run gets a colour of its own (``run_colors``): a model's second run, or an
unknown model whose hash lands on a colour already drawn, takes the next free colour.

Figures are sized for papers (``SIZES``: one column or the page width of a two-column
paper), and every piece of text is placed where it covers no data: legends go below their
axes (``legend_below``), point labels are placed where they overlap no other label and
dropped where no place is free (``place_labels``), notes go under the figure (``figure_note``).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only: m1eval never opens windows (CI, servers, notebooks alike)

import matplotlib.pyplot as plt
from matplotlib.ticker import Formatter
from matplotlib.transforms import Bbox

from m1eval.models.presets import canonical

KNOWN_COLORS = {
    "m1": "#d62728",
    "r1-qwen-1.5b": "#1f77b4",
    "r1-qwen-7b": "#2ca02c",
    "r1-llama-8b": "#9467bd",
    "llama-3.2-3b": "#ff7f0e",
}
# For other names and further runs of a model: every pair of these and KNOWN_COLORS is
# ``distinct_colours`` (no grey either, which marks ties in the time-budget figure).
FALLBACK_COLORS = [
    "#8c564b",
    "#e377c2",
    "#1a1a1a",
    "#01665e",
    "#000080",
    "#c51b7d",
    "#44aa99",
    "#999933",
]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
# A model's first run is solid; its further runs in a figure dashed, dash-dot, ... (dotted ":" marks crossovers).
RUN_LINESTYLES = ["-", "--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1, 1, 1))]

# Widths in inches: one column and the full text width of a two-column paper (ACL, NeurIPS, ICML
# are all within a few hundredths of these).
SIZES = {"single": 3.4, "double": 7.0}
PANEL_HEIGHT = {"single": 2.5, "double": 2.7}  # per row of panels to start from; ``fit_height`` adds room
AXES_HEIGHT = {"single": 1.6, "double": 1.8}  # the least height of a panel's data area, in inches
FONT_SIZE = {"single": 7.5, "double": 8.5}


def figure_width(size: str) -> float:
    if size not in SIZES:
        raise ValueError(f"figure size must be one of {', '.join(SIZES)}, got {size!r}")
    return SIZES[size]


def rc(size: str = "double") -> dict:
    """matplotlib settings of the figures at ``size`` (fonts scale with the width)."""
    font = FONT_SIZE[size] if size in FONT_SIZE else FONT_SIZE["double"]
    return {
        "figure.dpi": 110,
        "savefig.dpi": 300,
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.03,
        "font.size": font,
        "axes.titlesize": font + 0.5,
        "axes.labelsize": font,
        "xtick.labelsize": font - 0.5,
        "ytick.labelsize": font - 0.5,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linestyle": "-",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "legend.fontsize": font - 0.5,
        "legend.handlelength": 2.2,
        "legend.columnspacing": 1.2,
        "lines.linewidth": 1.4 if size == "single" else 1.6,
        "lines.markersize": 3.5 if size == "single" else 4.5,
    }


RC = rc("double")


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


@dataclass(frozen=True)
class RunLook:
    """How one run is drawn in a figure."""

    color: str
    marker: str
    linestyle: object


def _farthest(choices: Sequence[str], taken: set[str]) -> str | None:
    """The colour of ``choices`` not taken that is farthest from every taken one (the first on a tie)."""
    free = [c for c in choices if c not in taken]
    if not free:
        return None
    return max(free, key=lambda c: min((colour_distance(c, t) for t in taken), default=0.0))


def run_looks(runs: Sequence[tuple[str, str]]) -> dict[str, RunLook]:
    """(model, label) pairs in drawing order -> label -> colour, marker and line style.

    Every model's first run gets the model's colour and marker, solid (a model whose hashed
    colour another model already has gets the free colour farthest from those drawn). Then a
    model's further runs get the free colour of ``FALLBACK_COLORS`` farthest from those drawn
    (``KNOWN_COLORS`` only when none is left: they belong to their models in every figure),
    another marker and another line style, so two runs never look alike.
    """
    unique: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    for model, label in runs:
        if label in {u[1] for u in unique}:
            continue
        key = model or label
        unique.append((key, label, seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    taken: set[str] = set()
    colors: dict[str, str] = {}
    for key, label, index in unique:  # first runs: the model's colour
        if index == 0:
            color = model_color(key)
            if color in taken:
                color = _farthest(FALLBACK_COLORS, taken) or _farthest(list(KNOWN_COLORS.values()), taken) or color
            colors[label] = color
            taken.add(color)
    for _key, label, index in unique:  # further runs: a colour of their own
        if index > 0:
            found = _farthest(FALLBACK_COLORS, taken) or _farthest(list(KNOWN_COLORS.values()), taken)
            colors[label] = found or FALLBACK_COLORS[len(colors) % len(FALLBACK_COLORS)]
            taken.add(colors[label])
    markers: dict[str, str] = {}
    for key, label, index in sorted(unique, key=lambda u: u[2] > 0):  # first runs first, then the others
        marker = model_marker(key)
        if index or marker in markers.values():
            marker = next((m for m in MARKERS if m not in markers.values()), marker)
        markers[label] = marker
    return {
        label: RunLook(colors[label], markers[label], RUN_LINESTYLES[index % len(RUN_LINESTYLES)])
        for _key, label, index in unique
    }


def colour_distance(a, b) -> float:
    """How far apart two colours look, 0 to 765: the 'redmean' weighting of RGB differences, a cheap
    stand-in for a perceptual distance (green counts most, red more among reds)."""
    from matplotlib.colors import to_rgb

    x, y = ([255 * v for v in to_rgb(c)] for c in (a, b))
    red = (x[0] + y[0]) / 2
    dr, dg, db = (p - q for p, q in zip(x, y))
    return math.sqrt((2 + red / 256) * dr * dr + 4 * dg * dg + (2 + (255 - red) / 256) * db * db)


def colour_similarity(a, b) -> float:
    """Cosine of two colours as RGB vectors: 1.0 for shades of one colour (darker or lighter)."""
    from matplotlib.colors import to_rgb

    x, y = to_rgb(a), to_rgb(b)
    dot = sum(p * q for p, q in zip(x, y))
    norm = math.sqrt(sum(p * p for p in x)) * math.sqrt(sum(q * q for q in y))
    return dot / norm if norm else 1.0


def distinct_colours(a, b) -> bool:
    """Two colours a reader tells apart: far enough apart, and not shades of one colour."""
    return colour_distance(a, b) >= 110 and colour_similarity(a, b) < 0.985


@contextmanager
def style(size: str = "double") -> Iterator[None]:
    """Apply m1eval's rc settings for the figures created (and drawn) inside the block."""
    with plt.rc_context(rc(size)):
        yield


def new_figure(panels: int = 1, *, size: str = "double"):
    """A figure of ``panels`` axes (always a list) at a paper's width, in m1eval's style.

    One column stacks the panels; the page width puts two side by side per row.
    Call inside ``style(size)`` so that every artist made later gets the same fonts.
    """
    width = figure_width(size)
    cols = 1 if size == "single" else min(panels, 2)
    rows = math.ceil(panels / cols)
    with style(size):
        fig, axes = plt.subplots(
            rows, cols, figsize=(width, PANEL_HEIGHT[size] * rows), squeeze=False, layout="constrained"
        )
    flat = list(axes.ravel())
    for extra in flat[panels:]:
        fig.delaxes(extra)
    return fig, flat[:panels]


# ---------------------------------------------------------------------------- axes


def _step_decimals(step: float) -> int:
    """Decimals a percent tick needs at ``step`` (a share): 0.05 -> 0 ('5%'), 0.005 -> 1 ('0.5%')."""
    if not step > 0:
        return 0
    return max(0, math.ceil(-math.log10(step * 100) - 1e-9))


class PercentTicks(Formatter):
    """'0%, 2%, 4%' or '0.5%, 1.0%': shares as percent with the decimals the tick step needs, never fewer."""

    def __init__(self) -> None:
        self.decimals = 0

    def set_locs(self, locs) -> None:
        super().set_locs(locs)
        steps = [b - a for a, b in itertools.pairwise(locs) if b > a]
        self.decimals = _step_decimals(min(steps)) if steps else 0

    def __call__(self, x, pos=None) -> str:
        return f"{100 * x:.{self.decimals}f}%"


def percent_axis(ax) -> None:
    """Accuracy in %, on an axis that never shows impossible values, at 1-2-5 steps.

    Call after plotting. Autoscaling centres a flat line, so a run that solved nothing
    would sit in the middle of an axis running from -5% to 5%; the axis starts at 0 (and
    stops at 100%) instead, and a flat 0 curve gets a 0-10% axis, with the line at the bottom
    (just above the spine: the axis reaches 1.2% of its height below 0, where no tick is).
    Ticks fall on steps of 1, 2 or 5 (times a power of ten) with the decimals that step needs:
    a 0-10% axis reads 0%, 2%, 4%, ..., not 2%, 8%, 12% for 2.5% steps rounded.
    """
    from matplotlib.ticker import MaxNLocator

    low, high = ax.get_ylim()
    if high <= 0.0:  # nothing but zeros (bands included)
        high = 0.1
    low, high = max(low, 0.0), min(high, 1.02)
    if low == 0.0:  # a line at 0 would hide in the spine: a sliver below 0, never labelled
        low = -0.012 * high
    ax.set_ylim(low, high)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(PercentTicks())


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


# ---------------------------------------------------------------------------- text that covers no data

LEGEND_GAP_INCHES = 0.04  # between the x axis label and the legend below it


def legend_below(ax, *, handles=None, labels=None):
    """The axes' legend under its x axis label, in as many columns as fit the axes' width.

    Inside the axes a legend always covers some data once there are several runs (the
    best free corner moves with every run added), so it goes below, where constrained
    layout makes room for it. Returns the legend, or None when nothing is labelled.
    """
    import matplotlib.transforms as mtransforms

    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    fig = ax.get_figure(root=True)
    renderer = fig.canvas.get_renderer()
    decor = ax.xaxis.get_tightbbox(renderer)  # tick labels and the axis label, in pixels
    below = (ax.bbox.y0 - decor.y0) / fig.dpi if decor is not None else 0.3
    offset = mtransforms.ScaledTranslation(0, -(below + LEGEND_GAP_INCHES), fig.dpi_scale_trans)
    limit = ax.get_tightbbox(renderer).width
    for ncols in range(len(handles), 0, -1):
        legend = ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            bbox_transform=ax.transAxes + offset,
            ncols=ncols,
            borderaxespad=0.0,
            frameon=False,
        )
        if ncols == 1 or legend.get_window_extent(renderer).width <= limit:
            return legend
        legend.remove()
    return None  # unreachable: one column is always accepted


@dataclass
class Label:
    """A text to place next to a data point, if a free place exists."""

    text: str
    xy: tuple[float, float]
    color: object = "0.2"
    fontsize: float | None = None
    fontweight: str = "normal"


# Offsets (points) tried in order: above right, below right, above left, below left, above, below.
LABEL_OFFSETS = ((3, 3), (3, -3), (-3, 3), (-3, -3), (0, 6), (0, -6))


def place_labels(ax, labels: Sequence[Label], offsets=LABEL_OFFSETS, avoid: Sequence[tuple[float, float]] = ()) -> list:
    """Annotate each label at the first offset where it stays inside the axes and overlaps no
    label placed before it, no other text of the axes and no marker at the ``avoid`` points
    (data coordinates); a label with no free place is left out.

    Labels are tried in the given order, so put the ones that matter first. The figure's
    layout is settled first (one draw) so that the checks hold in the saved file; the labels
    themselves take no part in the layout. Returns the annotations placed.
    """
    if not labels:
        return []
    fig = ax.get_figure(root=True)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    occupied = [t.get_window_extent(renderer) for t in ax.texts if t.get_visible() and t.get_text()]
    radius = matplotlib.rcParams["lines.markersize"] / 2 * fig.dpi / 72  # markersize is a diameter in points
    for x, y in avoid:
        px, py = ax.transData.transform((x, y))
        occupied.append(Bbox.from_extents(px - radius, py - radius, px + radius, py + radius))
    placed = []
    for label in labels:
        for dx, dy in offsets:
            note = ax.annotate(
                label.text,
                label.xy,
                textcoords="offset points",
                xytext=(dx, dy),
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top",
                fontsize=label.fontsize if label.fontsize is not None else matplotlib.rcParams["font.size"] - 1.5,
                fontweight=label.fontweight,
                color=label.color,
                annotation_clip=False,
            )
            note.set_in_layout(False)
            box = note.get_window_extent(renderer)
            inside = box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in occupied):
                occupied.append(box)
                placed.append(note)
                break
            note.remove()
    return placed


def wrap_titles(fig) -> None:
    """Break a panel title that is wider than its panel onto two lines (at its ': ', else at a space).

    Constrained layout does not make room for a title's width, so a long one ran past the
    figure's edge (and was cut off in a saved file) or into its neighbour's.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titled = [ax for ax in fig.axes if ax.title.get_text() and "\n" not in ax.title.get_text()]
    wide = [
        ax for ax in titled if ax.title.get_window_extent(renderer).width > ax.get_window_extent(renderer).width * 1.1
    ]
    for ax in titled if wide else []:  # one wraps: all do, at their ': ', so the panels stay level
        title = ax.title
        text = title.get_text()
        head, sep, tail = text.partition(": ")
        if sep:
            title.set_text(f"{head}:\n{tail}")
        elif ax in wide:
            room = ax.get_window_extent(renderer).width * 1.1
            chars = max(10, int(len(text) * room / title.get_window_extent(renderer).width))
            title.set_text("\n".join(textwrap.wrap(text, chars)))


def fit_height(fig, size: str = "double") -> None:
    """Set the figure's height so that every panel's data area is ``AXES_HEIGHT`` high.

    Legends below the axes and notes under the figure take their room from the axes
    (constrained layout keeps the figure's size): five runs flattened the curves, and a long
    note made the layout give up (axes collapsed to nothing, the note drawn over them). The
    figure is first made tall enough for everything it holds, then set to the height at which
    the data areas are exactly the target, so panels of every figure at one size match.
    """
    panels = [ax for ax in fig.axes if ax.axison and ax.get_subplotspec() is not None]
    if not panels:
        return
    grid = panels[0].get_subplotspec().get_gridspec()
    rows = grid.nrows
    target = AXES_HEIGHT.get(size, AXES_HEIGHT["double"])
    if size == "double" and grid.ncols == 1:  # one panel across the page: a less flat one
        target *= 1.3
    renderer = fig.canvas.get_renderer()
    extra = 0.0  # inches of text outside the axes: the tallest legend of each row, the note, the title
    for row in range(rows):
        legends = [ax.get_legend() for ax in panels if ax.get_subplotspec().rowspan.start == row and ax.get_legend()]
        extra += max((legend.get_window_extent(renderer).height for legend in legends), default=0.0) / fig.dpi
    for text in (fig._supxlabel, fig._suptitle):  # noqa: SLF001 - matplotlib keeps them only there
        if text is not None and text.get_text():
            extra += text.get_window_extent(renderer).height / fig.dpi
    fig.set_figheight(rows * (target + 1.1) + extra)  # 1.1 in a row: title, tick labels, axis label
    for _ in range(6):
        fig.canvas.draw()
        short = target - min(ax.get_position().height * fig.get_figheight() for ax in panels)
        if abs(short) <= 0.01:
            return
        fig.set_figheight(fig.get_figheight() + short * rows)


def figure_note(fig, notes: Sequence[str], *, size: str = "double") -> None:
    """Notes (runs that differ, problems left out) under the whole figure, wrapped to its width."""
    if not notes:
        return
    font = FONT_SIZE.get(size, FONT_SIZE["double"]) - 1.5
    chars = max(40, int(fig.get_figwidth() * 72 / (font * 0.52)))
    lines = [line for note in notes for line in textwrap.wrap(f"• {note}", chars, subsequent_indent="  ")]
    fig.supxlabel("\n".join(lines), x=0.0, ha="left", fontsize=font, color="0.25", linespacing=1.25)
