"""Drawing progress on the terminal: the only library module that prints (``commands/`` and the
notebook use it). The library reports through callbacks (``runner.RunObserver``,
``records.Progress``); the classes here turn those reports into rich progress bars with
count, rate, elapsed time and ETA.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Self

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True)


class RateColumn(TextColumn):
    """Items per second with a unit, e.g. '312.4 completions/s'."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task):  # noqa: ANN001, ANN201 - rich's signature
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"- {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.1f} {self.unit}/s", style="progress.data.speed")


class HonestETAColumn(ProgressColumn):
    """Time left at the average rate since this command started, not rich's recent-speed guess.

    rich's estimate keeps the last rate while nothing finishes, so a stalled server showed
    "0:00:01" for minutes; here the elapsed time keeps growing, and so does the estimate.
    """

    def render(self, task):  # rich's signature: a Task in, a Text out
        start = task.fields.get("start_completed", 0)
        done = task.completed - start
        elapsed = task.elapsed or 0.0
        if task.total is None or done <= 0 or elapsed <= 0:
            return Text("-:--:--", style="progress.remaining")
        seconds = int((task.total - task.completed) * elapsed / done)
        return Text(f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}", style="progress.remaining")


def make_progress(
    unit: str = "it",
    *,
    extra: list[ProgressColumn] | None = None,
    transient: bool = False,
    eta: ProgressColumn | None = None,
    out: Console | None = None,
) -> Progress:
    """A rich Progress with rate and ETA; ``extra`` columns (e.g. tokens/s) go before the timers.

    ``eta`` replaces rich's time-remaining column (the runner's averages over the whole run);
    ``out`` is the console to draw on (default: stderr).
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(unit),
        *(extra or []),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        eta or TimeRemainingColumn(),
    ]
    return Progress(*columns, console=out or console, transient=transient)


class Bars:
    """``records.Progress`` drawn as bars: each ``stage`` adds a bar, ``advance`` moves the newest.

    Use as a context manager around the library call; ``visible=False`` draws nothing.
    """

    def __init__(self, unit: str = "it", *, transient: bool = False, visible: bool = True) -> None:
        self.progress = make_progress(unit, transient=transient or not visible)
        self.visible = visible
        self._task: Any = None

    def __enter__(self) -> Self:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def stage(self, description: str, total: int | None) -> None:
        self._task = self.progress.add_task(description, total=total, visible=self.visible)

    def describe(self, description: str) -> None:
        self.progress.update(self._task, description=description)

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self._task, n)

    def set_total(self, total: int) -> None:
        self.progress.update(self._task, total=total)


def announce(text: str, style: str = "") -> None:
    """One line on stderr (what a library step wants said: a conversion starts, a file is saved)."""
    console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False)


def waiting_text(in_flight: int, oldest_seconds: float) -> str:
    """'12 waiting, oldest 4m05s' for requests sent and not answered yet."""
    if in_flight <= 0:
        return ""
    oldest = int(oldest_seconds)
    age = f"{oldest // 60}m{oldest % 60:02d}s" if oldest >= 60 else f"{oldest}s"
    return f"{in_flight} waiting, oldest {age}"


class RunProgress:
    """``m1eval run``'s view of generation (a ``runner.RunObserver``): one bar with completions,
    tokens/s, the requests waiting on a server, and an ETA averaged over the whole command."""

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console
        self._progress: Progress | None = None
        self._bar: Any = None
        self._status: Any = None
        self._t0 = time.perf_counter()
        self._tokens = 0  # live estimate between stored batches, exact at each one

    def planned(self, path: Path, stored: int, expected: int) -> None:
        self.console.print(f"[bold]run[/] {path}: {stored}/{expected} samples stored, generating {expected - stored}")

    def status(self, text: str | None) -> None:
        if text is None:
            if self._status is not None:
                self._status.stop()
                self._status = None
        elif self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def started(self, expected: int, stored: int) -> None:
        extra: list[ProgressColumn] = [
            TextColumn("[cyan]{task.fields[tokens_rate]}"),
            TextColumn("[yellow]{task.fields[waiting]}"),
        ]
        self._progress = make_progress("completions", extra=extra, eta=HonestETAColumn(), out=self.console)
        self._progress.start()
        self._t0 = time.perf_counter()
        self._tokens = 0
        self._bar = self._progress.add_task(
            "generate", total=expected, completed=stored, tokens_rate="- tok/s", waiting="", start_completed=stored
        )

    def _rate(self) -> str:
        return f"{self._tokens / max(time.perf_counter() - self._t0, 1e-9):,.0f} tok/s"

    def progress(self, completions: int, tokens: int) -> None:
        if self._progress is None:
            return
        self._tokens += tokens
        self._progress.update(self._bar, advance=completions, tokens_rate=self._rate())

    def stored(self, generated: int, tokens: int) -> None:
        if self._progress is None:
            return
        self._tokens = tokens  # exact once stored; the live count is an estimate
        start = self._progress.tasks[0].fields.get("start_completed", 0)
        self._progress.update(self._bar, completed=start + generated, tokens_rate=self._rate())

    def waiting(self, in_flight: int, oldest_seconds: float) -> None:
        if self._progress is not None:
            self._progress.update(self._bar, waiting=waiting_text(in_flight, oldest_seconds))

    def notice(self, message: str) -> None:
        target = self._progress.console if self._progress is not None else self.console
        target.print(f"[yellow]{escape(message)}[/yellow]", highlight=False)  # server text: shown, not markup

    def finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
