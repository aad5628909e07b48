"""The metadata of ``samples.jsonl`` as a table: every field but the text, plus where each line lies.

Analysis (report, budget, plot, the notebook) needs ids, tokens, finish reasons, prefix
offsets, scores and batch ids, never the texts, which are nearly all of the file's bytes.
``read_meta`` returns that table, kept in ``samples_meta.parquet`` beside the append-only
``samples.jsonl`` so a later reader loads a few columns instead of parsing gigabytes.
``samples.jsonl`` stays the record of truth: the parquet is derived, and it is trusted only
for the bytes it says it covers. It records the size and mtime of the file it was built
from and the hash of the last 4 kB it covered; when the file has only grown (a resumed
run appended), just the new lines are parsed and added; any other change rebuilds it;
when the folder cannot be written the table is built in memory only.

Columns: the ``Completion`` fields except ``text`` (``prefix_chars``, ``timings`` and ``scores``
stored as JSON text, given back as dicts) and ``offset``/``length``, the byte range of the line
(``m1eval.rundir.sample_lines.read_lines`` reads a chosen few texts by it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from m1eval.records import Completion
from m1eval.rundir.runfiles import file_exists, file_stat, open_read, write_replace
from m1eval.rundir.sample_lines import SampleLine, ScanState, scan_samples
from m1eval.rundir.store import SAMPLES, ReadReport, RunStore

SAMPLES_META = "samples_meta.parquet"
META_VERSION = 1
LINE_COLUMNS = ["offset", "length"]
FIELDS = [f.name for f in fields(Completion) if f.name != "text"]
META_COLUMNS = [*FIELDS, *LINE_COLUMNS]
_JSON_FIELDS = ("prefix_chars", "timings", "scores")  # dicts, kept as JSON text
_INT_FIELDS = ("sample_index", "seed", "prompt_tokens", "completion_tokens", "offset", "length")
_CHECK_BYTES = 4096


@dataclass
class MetaBuilder:
    """Collects the metadata of scanned lines (first copy of a pair wins), column by column."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in META_COLUMNS})
    seen: set[tuple[str, int]] = field(default_factory=set)

    def add(self, lines: list[SampleLine]) -> list[Completion]:
        """Record ``lines``; returns their completions that are not repeats of a stored pair."""
        kept = []
        for line in lines:
            completion = line.completion
            if completion.key in self.seen:
                continue
            self.seen.add(completion.key)
            kept.append(completion)
            for name in FIELDS:
                self.columns[name].append(getattr(completion, name))
            self.columns["offset"].append(line.offset)
            self.columns["length"].append(line.length)
        return kept

    def frame(self) -> pd.DataFrame:
        return _typed(pd.DataFrame(self.columns, columns=META_COLUMNS))


@dataclass
class SampleMeta:
    """The metadata table of one run's samples and what reading the file found (torn tail, bad lines)."""

    frame: pd.DataFrame
    report: ReadReport
    unsaved: tuple[ScanState, tuple[int, int]] | None = None  # read with keep=False and not kept yet

    def keys(self) -> set[tuple[str, int]]:
        """The stored (problem_id, sample_index) pairs."""
        return set(zip(self.frame["problem_id"], self.frame["sample_index"].tolist()))

    def keep(self, store: RunStore) -> None:
        """Save a view read with ``keep=False`` once the caller may write (the runner, after its checks)."""
        if self.unsaved is not None:
            save_meta(store, self.frame, *self.unsaved)
            self.unsaved = None


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in _INT_FIELDS:
        try:
            frame[name] = frame[name].astype("int64")
        except (TypeError, ValueError):  # a hand-edited file with a missing count: left as read
            pass
    frame["problem_id"] = frame["problem_id"].astype(str)
    return frame


def _signature(path: Path) -> tuple[int, int]:
    stat = file_stat(path)
    if stat is None:
        raise FileNotFoundError(path)
    return stat.st_size, stat.st_mtime_ns


def _tail_hash(path: Path, covered: int) -> str:
    with open_read(path) as handle:
        handle.seek(max(0, covered - _CHECK_BYTES))
        return hashlib.sha256(handle.read(min(covered, _CHECK_BYTES))).hexdigest()


def scan_meta(
    store: RunStore,
    builder: MetaBuilder | None = None,
    state: ScanState | None = None,
    *,
    start: int = 0,
    first_line: int = 1,
):  # -> Iterator[list[Completion]]
    """Stream the completions from byte ``start`` while recording their metadata in ``builder``.

    Grading iterates this (it needs the texts, a chunk at a time) and then keeps the
    builder's table with ``save_meta``, so the one parse of the file also indexes it.
    """
    builder = builder if builder is not None else MetaBuilder()
    for chunk in scan_samples(store.path / SAMPLES, state, start=start, first_line=first_line):
        yield builder.add(chunk)


def save_meta(store: RunStore, frame: pd.DataFrame, state: ScanState, signature: tuple[int, int]) -> bool:
    """Keep ``frame`` as the folder's metadata view of the file as it was at ``signature``; False if unwritable."""
    path = store.path / SAMPLES
    stored = frame.copy()
    for name in _JSON_FIELDS:
        stored[name] = [None if v is None else json.dumps(v, sort_keys=False) for v in stored[name]]
    info = {
        "version": META_VERSION,
        "size": signature[0],
        "mtime_ns": signature[1],
        "covered": state.covered,
        "lines": state.covered_lines,
        "truncated_tail": state.truncated_tail,
        "bad_lines": state.bad_lines,
        "tail_sha256": _tail_hash(path, state.covered) if file_exists(path) else "",
    }
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(stored, preserve_index=False)
    for name in _JSON_FIELDS:
        schema = schema.set(schema.get_field_index(name), pa.field(name, pa.string()))
    table = pa.Table.from_pandas(stored, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"m1eval": json.dumps(info).encode()})
    tmp = store.path / f"{SAMPLES_META}.{os.getpid()}.tmp"
    try:
        write_replace(store.path / SAMPLES_META, lambda handle: pq.write_table(table, handle), tmp=tmp)
    except OSError:  # an unwritable folder: the view stays in memory (a linked target is refused, not skipped)
        return False
    return True


def _load_cached(store: RunStore) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    import pyarrow.parquet as pq

    path = store.path / SAMPLES_META
    if not file_exists(path):
        return None
    try:
        with open_read(path) as handle:
            table = pq.read_table(handle)
        info = json.loads((table.schema.metadata or {}).get(b"m1eval", b"{}"))
    except (OSError, ValueError):  # an unreadable cache is rebuilt, never trusted
        return None
    if info.get("version") != META_VERSION or list(table.column_names) != META_COLUMNS:
        return None
    frame = table.drop_columns(list(_JSON_FIELDS)).to_pandas()
    for name in _JSON_FIELDS:
        texts = table.column(name).fill_null("null").to_pylist()  # one parse per column, not one per row
        values = json.loads("[" + ",".join(texts) + "]") if texts else []
        frame.insert(META_COLUMNS.index(name), name, pd.Series(values, dtype=object))
    return _typed(frame), info


def _report(store: RunStore, frame: pd.DataFrame, state: ScanState) -> ReadReport:
    report = ReadReport(
        store.path / SAMPLES, rows=len(frame), truncated_tail=state.truncated_tail, bad_lines=list(state.bad_lines)
    )
    store.note_repairs(report)
    return report


def read_meta(store: RunStore, *, keep: bool = True) -> SampleMeta:
    """The metadata of every stored completion, from the kept view where it is current (see the module).

    ``keep=False`` writes nothing (a caller that may still refuse to touch the folder);
    ``SampleMeta.keep`` saves the view later.
    """
    path = store.path / SAMPLES
    if not file_exists(path):
        return SampleMeta(MetaBuilder().frame(), ReadReport(path))
    signature = _signature(path)
    cached = _load_cached(store)
    if cached is not None:
        frame, info = cached
        if (info["size"], info["mtime_ns"]) == signature:
            state = ScanState(
                info["lines"], info["covered"], info["lines"], info["truncated_tail"], list(info["bad_lines"])
            )
            return SampleMeta(frame, _report(store, frame, state))
        if signature[0] >= info["covered"] and _tail_hash(path, info["covered"]) == info["tail_sha256"]:
            return _extend(store, frame, info, signature, keep)
    builder, state = MetaBuilder(), ScanState()
    for _ in scan_meta(store, builder, state):
        pass
    return _built(store, builder.frame(), state, signature, keep)


def _built(
    store: RunStore, frame: pd.DataFrame, state: ScanState, signature: tuple[int, int], keep: bool
) -> SampleMeta:
    meta = SampleMeta(frame, _report(store, frame, state), (state, signature))
    if keep:
        meta.keep(store)
    return meta


def _extend(
    store: RunStore, frame: pd.DataFrame, info: dict[str, Any], signature: tuple[int, int], keep: bool
) -> SampleMeta:
    """The file grew past what the view covers: parse only the new lines and add them."""
    builder = MetaBuilder(seen=set(zip(frame["problem_id"], frame["sample_index"].tolist())))
    state = ScanState(bad_lines=list(info["bad_lines"]))
    for _ in scan_meta(store, builder, state, start=info["covered"], first_line=info["lines"] + 1):
        pass
    added = builder.frame()
    frame = pd.concat([frame, added], ignore_index=True) if len(added) else frame
    return _built(store, _typed(frame), state, signature, keep)
