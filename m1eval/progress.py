"""One progress-bar style for every long stage: count, rate, elapsed and ETA."""

from __future__ import annotations

from rich.console import Console
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

console = Console(stderr=True)


class RateColumn(TextColumn):
    """Items per second with a unit, e.g. '312.4 completions/s'."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task):  # noqa: ANN001, ANN201 - rich's signature
        from rich.text import Text

        speed = task.finished_speed or task.speed
        if speed is None:
            return Text(f"- {self.unit}/s", style="progress.data.speed")
        return Text(f"{speed:,.1f} {self.unit}/s", style="progress.data.speed")


def make_progress(unit: str = "it", *, extra: list[ProgressColumn] | None = None, transient: bool = False,
                  eta: ProgressColumn | None = None) -> Progress:
    """A rich Progress with rate and ETA; ``extra`` columns (e.g. tokens/s) go before the timers.

    ``eta`` replaces rich's time-remaining column (the runner's averages over the whole run).
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
    return Progress(*columns, console=console, transient=transient)
