"""The completions of one problem, read by byte offset, and split for display.

A 500 x 64 run of long completions is hundreds of megabytes of text; the catalogue keeps
only where each sample's line starts (``rundata.sample_line_index``), and a problem page reads
its own samples' lines and nothing else. A line that is no longer what the index says
(the file was rewritten while open) is a ``TextsChanged``, which the page shows.

Display splits a completion into the thinking part (before ``</think>``) and the rest, and
marks the extracted answer where it stands: its last occurrence in the visible text,
which is where the extraction rules (last box, last phrase, last number) found it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from m1eval.rundir.runfiles import open_read
from m1eval.rundir.store import SAMPLES, StoreError

THINK_CLOSE = "</think>"
INLINE_CHARS = 3_000  # a part longer than this is collapsed and, when served, loaded on demand
CONTEXT_CHARS = 240  # characters shown on each side of the answer in a collapsed sample


class TextsChanged(Exception):
    """samples.jsonl no longer matches the index it was read with."""


def read_texts(run_dir: Path, rows: Sequence[tuple[str, int, int, int]]) -> dict[int, str]:
    """Texts of (problem_id, sample_index, line_offset, line_bytes) rows, keyed by sample index."""
    path = run_dir / SAMPLES
    out: dict[int, str] = {}
    try:
        with open_read(path) as handle:  # never through a link (m1eval.rundir.runfiles)
            for problem_id, sample_index, offset, size in sorted(rows, key=lambda r: r[2]):
                handle.seek(int(offset))
                raw = handle.read(int(size))
                try:
                    row = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise TextsChanged(
                        f"{path}: the line of sample {sample_index} of {problem_id!r} "
                        f"at byte {offset} no longer reads; the file changed while open"
                    ) from None
                if (
                    not isinstance(row, dict)
                    or row.get("problem_id") != problem_id
                    or row.get("sample_index") != sample_index
                    or not isinstance(row.get("text"), str)
                ):
                    raise TextsChanged(
                        f"{path}: byte {offset} no longer holds sample {sample_index} of "
                        f"{problem_id!r}; the file changed while open"
                    )
                out[int(sample_index)] = row["text"]
    except OSError as exc:
        raise TextsChanged(f"{path}: {exc.strerror or exc}") from None
    except StoreError as exc:  # samples.jsonl became a link or another kind of file
        raise TextsChanged(str(exc)) from None
    return out


@dataclass(frozen=True)
class Part:
    """One displayed piece of a completion: the thinking, or the rest with the answer marked.

    ``before + mark + after`` is the part's text; ``mark`` is empty when the answer is not in it.
    """

    name: str  # "thinking" | "answer"
    before: str
    mark: str
    after: str

    @property
    def chars(self) -> int:
        return len(self.before) + len(self.mark) + len(self.after)

    @property
    def long(self) -> bool:
        return self.chars > INLINE_CHARS

    def context(self) -> tuple[str, str, str, bool, bool]:
        """The answer with CONTEXT_CHARS around it (or the part's end): (before, mark, after, cut before, cut after)."""
        if self.mark:
            before, after = self.before[-CONTEXT_CHARS:], self.after[:CONTEXT_CHARS]
            return before, self.mark, after, len(before) < len(self.before), len(after) < len(self.after)
        tail = (self.before + self.after)[-2 * CONTEXT_CHARS :]
        return tail, "", "", len(tail) < self.chars, False

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "before": self.before, "mark": self.mark, "after": self.after}


def split_completion(text: str, answer: str | None) -> list[Part]:
    """The thinking part (when the text closes one) and the visible part with ``answer`` marked."""
    close = text.rfind(THINK_CLOSE)
    parts: list[Part] = []
    visible = text
    if close >= 0:
        parts.append(Part("thinking", text[: close + len(THINK_CLOSE)], "", ""))
        visible = text[close + len(THINK_CLOSE) :]
    at = visible.rfind(answer) if answer else -1
    if answer and at >= 0:
        parts.append(Part("answer", visible[:at], answer, visible[at + len(answer) :]))
    else:
        parts.append(Part("answer", visible, "", ""))
    return parts
