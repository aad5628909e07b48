"""The one parser of ``samples.jsonl``: stream its lines in bounded chunks, with their byte offsets.

Every reader of stored completions comes through ``scan_samples`` (the store's
``read_samples``, the metadata view, grading), so a run's texts are never held whole in
memory by accident, and a test can count how often one command parses the file. Each
record keeps the byte offset and length of its line: a later stage that needs a few
texts (sequential scaling) seeks to them instead of parsing the file again.

Tolerance is the store's: a last line without its newline that is not valid JSON was
torn by a killed writer and is reported (``truncated_tail``), not read; any other
unreadable line is reported by number (``bad_lines``) and skipped; a valid last line
missing only its newline is kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from m1eval.records import Completion
from m1eval.rundir.runfiles import file_exists, open_read

CHUNK_BYTES = 32 * 1024 * 1024  # text held at once while streaming (a chunk ends on a line boundary)


@dataclass
class ScanState:
    """What a scan found besides good records; filled in as the scan goes."""

    lines: int = 0  # lines seen (the number of the last one), for numbering bad lines
    covered: int = 0  # bytes up to and including the last newline seen: what later scans need not re-read
    covered_lines: int = 0  # the lines within ``covered``
    truncated_tail: bool = False
    bad_lines: list[int] = field(default_factory=list)


@dataclass
class SampleLine:
    """One stored completion and where its line lies in ``samples.jsonl``."""

    completion: Completion
    offset: int
    length: int


def scan_samples(
    path: str | os.PathLike[str],
    state: ScanState | None = None,
    *,
    start: int = 0,
    first_line: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[list[SampleLine]]:
    """Yield the completions of ``path`` from byte ``start`` on, in chunks of about ``chunk_bytes`` of text.

    ``state`` collects line counts, bad lines and the torn tail; ``first_line`` is the
    number of the line at ``start`` (for messages). Duplicates are the caller's to drop.
    """
    state = state if state is not None else ScanState()
    state.covered = start
    state.lines = state.covered_lines = first_line - 1
    path = Path(path)
    if not file_exists(path):  # a link or a non-regular file is refused here (UnsafeRunFile)
        return
    chunk: list[SampleLine] = []
    held = 0
    offset = start
    with open_read(path) as handle:
        handle.seek(start)
        for raw in handle:
            state.lines += 1
            length = len(raw)
            ended = raw.endswith(b"\n")
            here, offset = offset, offset + length
            if ended:
                state.covered, state.covered_lines = offset, state.lines
            if raw.strip():
                line = _parse(raw, ended, state)
                if line is not None:
                    chunk.append(SampleLine(line, here, length))
                    held += length
            if held >= chunk_bytes:
                yield chunk
                chunk, held = [], 0
    if chunk:
        yield chunk


def _parse(raw: bytes, ended: bool, state: ScanState) -> Completion | None:
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        if ended:
            state.bad_lines.append(state.lines)
        else:
            state.truncated_tail = True  # a killed writer's partial last line
        return None
    try:
        return Completion.from_dict(row)
    except (TypeError, ValueError, AttributeError):
        state.bad_lines.append(-1)  # valid JSON, not a completion (as the store has always counted it)
        return None


def read_lines(path: str | os.PathLike[str], offsets: Sequence[int], lengths: Sequence[int]) -> list[Completion]:
    """The completions stored at these byte ranges (from a scan or the metadata view), in the order asked."""
    out: list[Completion] = []
    order = sorted(range(len(offsets)), key=lambda i: offsets[i])
    found: dict[int, Completion] = {}
    with open_read(path) as handle:
        for i in order:
            handle.seek(int(offsets[i]))
            raw = handle.read(int(lengths[i]))
            try:
                found[i] = Completion.from_dict(json.loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{path}: the line at byte {offsets[i]} changed since it was indexed ({exc}); "
                    "read the run folder again"
                ) from None
    for i in range(len(offsets)):
        out.append(found[i])
    return out
