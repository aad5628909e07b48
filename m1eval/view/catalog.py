"""The runs a viewer serves: found once at start, each reloaded when its folder changes.

A run folder can be written while it is open (``m1eval run`` appends samples, ``grade``
replaces grades.parquet). Each request checks the folder's files (size and mtime); a
change reloads the run, and a run that no longer loads keeps its key and shows the error
on its pages instead of taking the server down. Keys are the only names the pages use
for runs, so a URL can only ever reach a run that was found here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from m1eval.analysis.report import RunSummary, summarize_run
from m1eval.rundir.rundata import RunData, load_run
from m1eval.rundir.runfiles import file_stat
from m1eval.rundir.store import GRADES, MANIFEST, PROBLEMS, SAMPLES, StoreError, find_runs, safe_name

WATCHED = (MANIFEST, PROBLEMS, SAMPLES, GRADES)
SUMMARY_METRICS = ("pass", "maj")  # what the pages show: pass@k and maj@k with the report's intervals
LOAD_ERRORS = (StoreError, ValueError, KeyError, OSError, pd.errors.ParserError)


class ViewError(Exception):
    """A run cannot be shown now; the message is for the page."""


def _signature(folder: Path) -> tuple:
    out: list[tuple[str, int | None, int | None]] = []
    for name in WATCHED:
        try:  # lstat through the run-file check: a link is never followed, and its load says why it is refused
            stat = file_stat(folder / name)
        except (OSError, StoreError):
            stat = None
        out.append((name, stat.st_size, stat.st_mtime_ns) if stat is not None else (name, None, None))
    return tuple(out)


@dataclass
class LoadedRun:
    """One run as the pages need it: the data (texts left on disk), its summary, when it was read."""

    run: RunData
    summary: RunSummary
    signature: tuple
    cache: dict = field(default_factory=dict)  # per-run page data (assemble.*), dropped with the run


@dataclass
class RunSlot:
    """A found run folder under its key: loaded, or the reason it cannot be."""

    key: str
    path: Path
    loaded: LoadedRun | None = None
    error: str | None = None
    seen: tuple = ()  # the folder's signature when it was last read (loaded or failed)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def task(self) -> str:
        return self.loaded.run.task if self.loaded else self.path.parent.parent.name

    @property
    def label(self) -> str:
        return self.loaded.run.label if self.loaded else f"{self.path.parent.name}/{self.path.name}"


def load(path: Path, *, sign_flips: int = 1000, level: float = 0.95) -> LoadedRun:
    """Read a run without its texts (``text_offsets``) and summarise it as ``m1eval report`` does."""
    signature = _signature(path)
    run = load_run(path, text_offsets=True)
    if not len(run.frame):
        raise ValueError(f"{path}: no graded samples to show; run `m1eval grade {path}` first")
    summary = summarize_run(run, sign_flips=sign_flips, level=level, metrics=list(SUMMARY_METRICS))
    return LoadedRun(run, summary, signature)


class Catalog:
    """Every run found below the given paths, under stable URL-safe keys."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        sign_flips: int = 1000,
        level: float = 0.95,
        on_loaded: Callable[[RunSlot], None] | None = None,
        prepare: Callable[[LoadedRun], object] | None = None,
    ) -> None:
        """``prepare`` runs on each run once it is (re)loaded: the viewer builds its problem table
        there, at start, so that opening a run page does not wait for it."""
        self.sign_flips, self.level, self.prepare = sign_flips, level, prepare
        # each folder once, absolute but with its last link kept (a linked run folder is then refused by its load)
        folders = list({folder.resolve(): Path(os.path.abspath(folder)) for folder in find_runs(paths)}.values())
        self.slots: dict[str, RunSlot] = {}
        for folder in folders:
            key = _unique_key(folder, self.slots)
            slot = RunSlot(key, folder)
            self._reload(slot)
            self.slots[key] = slot
            if on_loaded:
                on_loaded(slot)

    def _reload(self, slot: RunSlot) -> None:
        slot.seen = _signature(slot.path)
        try:
            slot.loaded, slot.error = load(slot.path, sign_flips=self.sign_flips, level=self.level), None
            if self.prepare is not None:
                self.prepare(slot.loaded)
        except LOAD_ERRORS as exc:
            slot.loaded, slot.error = None, f"{slot.path}: cannot be read now: {exc}"

    def get(self, key: str) -> RunSlot | None:
        """The slot, reloaded first if its folder changed since it was read; None for an unknown key."""
        slot = self.slots.get(key)
        if slot is None:
            return None
        with slot.lock:
            if _signature(slot.path) != slot.seen:
                self._reload(slot)
        return slot

    def loaded(self, key: str) -> LoadedRun:
        """The loaded run under ``key``; ``ViewError`` with the reason when it cannot be read."""
        slot = self.get(key)
        if slot is None:
            raise KeyError(key)
        if slot.loaded is None:
            raise ViewError(slot.error or f"{slot.path}: not loaded")
        return slot.loaded

    def by_task(self) -> dict[str, list[RunSlot]]:
        groups: dict[str, list[RunSlot]] = {}
        for key in self.slots:
            slot = self.get(key)
            if slot is None:  # dropped from the catalog while we iterated
                continue
            groups.setdefault(slot.task, []).append(slot)
        return dict(sorted(groups.items()))

    def pairs(self) -> list[tuple[str, str]]:
        """Every two runs of one task, in the order found: the comparisons the viewer offers."""
        out: list[tuple[str, str]] = []
        for slots in self.by_task().values():
            for i, a in enumerate(slots):
                out.extend((a.key, b.key) for b in slots[i + 1 :])
        return out


def _unique_key(folder: Path, taken: dict[str, RunSlot]) -> str:
    base = "--".join(safe_name(part) for part in (folder.parent.parent.name, folder.parent.name, folder.name))
    key, i = base, 2
    while key in taken:
        key, i = f"{base}-{i}", i + 1
    return key
