"""The work items a grading worker process runs (imported by the forkserver up front)."""

from __future__ import annotations

from typing import Any

import latex2sympy2_extended  # noqa: F401 - preload: children fork with the grammar ready
import sympy  # noqa: F401

from m1eval.grading import clusters, equivalence


def verdict_any(golds: tuple[str, ...], answer: str, answer_format: str | None, tolerance: float | None,
                symbolic_ok: bool) -> tuple[bool | None, bool]:
    """(correct against any gold or None if undecided, answer unparsable) for normalised strings."""
    undecided = False
    unparsable = True
    for gold in golds:
        result, bad = equivalence.verdict(gold, answer, answer_format=answer_format, tolerance=tolerance,
                                          symbolic_ok=symbolic_ok, normalized=True)
        if result is True:
            return True, False
        if result is None:
            undecided = True
        unparsable = unparsable and bad
    return (None if undecided else False), (unparsable and not undecided)


def run_task(kind: str, payload: Any) -> Any:
    if kind == "verdict":
        golds, answer, answer_format, tolerance = payload
        return verdict_any(tuple(golds), answer, answer_format, tolerance, True)
    if kind == "key":
        (answer,) = payload
        return clusters.answer_key(answer, symbolic_ok=True)
    raise ValueError(f"unknown grading task {kind!r}")
