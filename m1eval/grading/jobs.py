"""The work items a grading worker process runs (``preload`` imports them into the forkserver).

Everything that reads untrusted text runs here, under the pool's per-item deadline:
extraction, normalisation, the fast verdict tiers, class keys and sympy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from m1eval.grading import clusters, equivalence
from m1eval.grading.extract import POSITIONAL_RULES, extract, question_expressions


def verdict_any(
    golds: tuple[str, ...], answer: str, answer_format: str | None, tolerance: float | None, symbolic_ok: bool
) -> tuple[bool | None, bool]:
    """(correct against any gold or None if undecided, answer unparsable) for normalised strings."""
    undecided = False
    unparsable = True
    for gold in golds:
        result, bad = equivalence.verdict(
            gold, answer, answer_format=answer_format, tolerance=tolerance, symbolic_ok=symbolic_ok, normalized=True
        )
        if result is True:
            return True, False
        if result is None:
            undecided = True
        unparsable = unparsable and bad
    return (None if undecided else False), (unparsable and not undecided)


@lru_cache(maxsize=65_536)
def _fast_verdict(
    golds: tuple[str, ...], norm: str, answer_format: str | None, tolerance: float | None
) -> tuple[bool | None, bool]:
    return verdict_any(golds, norm, answer_format, tolerance, False)


@lru_cache(maxsize=65_536)
def _fast_key(norm: str) -> tuple | None:
    return clusters.answer_key(norm, symbolic_ok=False)


@lru_cache(maxsize=8_192)
def _prepare_golds(golds: tuple[str, ...], unit: str | None) -> tuple[str, ...]:
    meta = {"unit": unit} if unit is not None else None
    return tuple(dict.fromkeys(equivalence.prepare(g, meta) for g in golds))


@lru_cache(maxsize=1_024)
def _restated(question: str | None) -> frozenset[str]:
    return question_expressions(question)


@lru_cache(maxsize=16_384)
def _extract_normalize(text: str, rules: tuple[str, ...], unit: str | None, restated: frozenset[str] = frozenset()):  # noqa: ANN202
    """(extraction, normalised answer); memoised for short texts (repeated answers are common)."""
    found = extract(text, rules, restated=restated)
    if found.answer is None:
        return found, None
    return found, equivalence.prepare(found.answer, {"unit": unit} if unit is not None else None)


def prepare_items(
    golds_raw: tuple[str, ...],
    unit: str | None,
    answer_format: str | None,
    tolerance: float | None,
    rules: tuple[str, ...],
    texts: list[str],
    truncated: list[bool] | None = None,
    question: str | None = None,
) -> tuple[tuple[str, ...], list]:
    """One problem's chunk of completions: extract, normalise, decide what the fast tiers can.

    Returns the normalised golds and, per text, ``(answer, rule, normalised, fast verdict,
    fast class key)``; the verdict is ``(True/False/None, unparsable)`` and the key None
    when it needs sympy. ``truncated[i]``: text ``i`` was cut off by length, so the
    positional rules do not read it; an answer that is one of the ``question``'s own
    expressions is passed over (docs/grading.md).
    """
    golds = _prepare_golds(golds_raw, unit)
    cut_rules = tuple(r for r in rules if r not in POSITIONAL_RULES)
    # the question's own expressions, less any that is the gold ("Which is larger, $2^{10}$ or $10^3$?")
    restated = _restated(question) - frozenset(golds) if any(r != "boxed" for r in rules) else frozenset()
    out: list[tuple[Any, ...]] = []
    for i, text in enumerate(texts):
        these = cut_rules if truncated is not None and truncated[i] else rules
        found, norm = (
            _extract_normalize(text, these, unit, restated)
            if len(text) <= 10_000
            else _extract_normalize.__wrapped__(text, these, unit, restated)
        )
        if found.answer is None:
            out.append((None, None, None, None, None))
            continue
        if not norm:
            out.append((found.answer, found.rule, norm, None, None))
            continue
        fast = _fast_verdict(golds, norm, answer_format, tolerance)
        key = _fast_key(norm) if fast[0] is not True else None
        out.append((found.answer, found.rule, norm, fast, key))
    return golds, out


def run_task(kind: str, payload: Any) -> Any:
    if kind == "prepare-many":
        rules, groups = payload
        return [
            prepare_items(golds, unit, fmt, tol, rules, texts, *rest) for golds, unit, fmt, tol, texts, *rest in groups
        ]
    if kind == "prepare":
        return prepare_items(*payload)
    if kind == "verdict":
        golds, answer, answer_format, tolerance = payload
        return verdict_any(tuple(golds), answer, answer_format, tolerance, True)
    if kind == "key":
        (answer,) = payload
        return clusters.answer_key(answer, symbolic_ok=True)
    if kind == "extract":
        text, rules, *rest = payload
        truncated = bool(rest and rest[0])
        question = rest[1] if len(rest) > 1 else None
        return extract(text, rules, truncated=truncated, restated=_restated(question))
    if kind == "check":
        return equivalence.check_inline(*payload)
    if kind == "check-light":  # everything but sympy; status "pending" when sympy is needed
        return equivalence.check_inline(*payload, symbolic_ok=False)
    if kind == "sleep":  # a stalled step on demand: how tests check that deadlines kill
        import time

        time.sleep(float(payload))
        return None
    raise ValueError(f"unknown grading task {kind!r}")
