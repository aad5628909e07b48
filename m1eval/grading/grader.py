"""Grade whole runs: extraction, cached verdicts, equivalence classes, and a guarded pool.

A 500 x 64 run holds 32,000 completions but only a few thousand distinct
(gold, normalised answer) pairs, and most of those are numbers. Every step that reads
model text runs in worker processes with a hard per-item deadline and a memory limit
(issue 10: one answer that made a pattern backtrack stalled the main process for good):

1. per problem, chunks of completions go to the pool, where each is extracted (under
   the run's extraction policy), normalised, and decided by the cheap tiers (strings,
   exact numbers, shapes) together with its class key when no algebra is needed; a chunk
   past its deadline is retried one completion at a time, and a completion past its own
   deadline is graded ``timeout``;
2. the distinct undecided pairs and class keys go to the pool for sympy.

The main process only moves strings and looks up dictionaries. Verdicts and keys are
memoised on the Grader (and can be saved, so an interrupted ``grade`` keeps its work).
Grading a whole run folder is a run-level stage: ``m1eval.pipeline.stages.grade_run``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from m1eval.grading.extract import DEFAULT_POLICY, MAX_SCAN_CHARS, canonical_policy, parse_policy, visible_text
from m1eval.grading.pool import ERROR, OK, TIMEOUT, WorkerPool
from m1eval.records import NO_PROGRESS, Completion, Grade, Problem, Progress

# Bump whenever any verdict can change (policy, normalisation, parser, tolerance).
GRADER_VERSION = "m1eval-grading-1.4"

CHUNK_TEXTS = 64
CHUNK_CHARS = 2_000_000
# How often a long grading hands its memo to ``on_checkpoint`` (a SIGKILL loses at most this much work).
CHECKPOINT_SECONDS = 30.0

VerdictKey = tuple[tuple[str, ...], str, "str | None", "float | None"]


@dataclass
class _Verdict:
    correct: bool
    unparsable: bool = False
    timeout: bool = False


@dataclass
class _Row:
    p_index: int
    completion: Completion
    raw: str | None = None
    rule: str | None = None
    norm: str | None = None
    timeout: bool = False
    group: int | None = None  # the problem whose classes the row joins (None: p_index, one call's problem)


@dataclass(frozen=True)
class _Stub:
    """What assembling a grade needs of a completion once its text is dropped (``grade_stream``)."""

    problem_id: str
    sample_index: int
    finish_reason: str


class _ExtractOnly:
    """Forwards the extraction counts of each chunk's ``grade_many`` steps to one bar of completions."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.extracting = bar, False

    def stage(self, description: str, total: int | None) -> None:
        self.extracting = description.startswith("grading (extract")

    def describe(self, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        if self.extracting:
            self.bar.advance(n)

    def set_total(self, total: int) -> None:
        pass


def _tolerance(meta: dict[str, Any]) -> float | None:
    value = meta.get("tolerance") if isinstance(meta, dict) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _tail(text: Any) -> str | None:
    """What extraction may look at: the text after thinking, at most its last MAX_SCAN_CHARS."""
    if not isinstance(text, str) or not text:
        return None
    visible = visible_text(text)
    if visible is None:
        return None
    return visible[-MAX_SCAN_CHARS:]


def _tuplify(value: Any) -> Any:
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Grader:
    """Grades completions against problems; use as a context manager so workers are stopped."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = 5.0,
        memory_mb: int = 1024,
        fallbacks: bool = False,
        extraction: str | None = None,
        on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_seconds: float | None = None,
    ) -> None:
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1 (got {self.workers})")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds (got {timeout})")
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.extraction = canonical_policy(
            extraction if extraction is not None else ("lenient" if fallbacks else DEFAULT_POLICY)
        )
        self.rules = parse_policy(self.extraction)
        self._pool: WorkerPool | None = None
        self._verdicts: dict[VerdictKey, _Verdict] = {}
        self._keys: dict[str, tuple] = {}
        self._seen_pairs: set[VerdictKey] = set()
        self.stats = {"pairs": 0, "pool_items": 0, "timeouts": 0, "extraction_timeouts": 0}
        # ``export_cache`` goes to ``on_checkpoint`` at most every ``checkpoint_seconds`` while grading,
        # so a grade killed without a chance to save (SIGKILL, the OOM killer) keeps what it decided
        self.on_checkpoint = on_checkpoint
        self.checkpoint_seconds = CHECKPOINT_SECONDS if checkpoint_seconds is None else checkpoint_seconds
        self._checkpointed = time.monotonic()

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, force: bool = False) -> None:
        if self._pool is not None:
            self._pool.close(force=force)
            self._pool = None

    # ------------------------------------------------------------------ memo on disk
    def export_cache(self) -> dict[str, Any]:
        """The memoised verdicts and class keys, JSON-ready (what an interrupted grade keeps)."""
        verdicts = [
            [list(k[0]), k[1], k[2], k[3], v.correct, v.unparsable] for k, v in self._verdicts.items() if not v.timeout
        ]
        keys = [[n, list(k)] for n, k in self._keys.items() if k != ("pending",)]
        return {"grader_version": GRADER_VERSION, "verdicts": verdicts, "keys": keys}

    def _checkpoint(self) -> None:
        """Hand the memo to ``on_checkpoint`` when ``checkpoint_seconds`` passed since the last time."""
        if self.on_checkpoint is None or time.monotonic() - self._checkpointed < self.checkpoint_seconds:
            return
        self.on_checkpoint(self.export_cache())
        self._checkpointed = time.monotonic()

    def import_cache(self, data: dict[str, Any]) -> int:
        """Load ``export_cache`` output of the same grader version; returns the entries read."""
        if not isinstance(data, dict) or data.get("grader_version") != GRADER_VERSION:
            return 0
        count = 0
        for golds, norm, fmt, tol, correct, unparsable in data.get("verdicts", []):
            self._verdicts[(tuple(golds), norm, fmt, tol)] = _Verdict(bool(correct), bool(unparsable))
            count += 1
        for norm, key in data.get("keys", []):
            self._keys[norm] = _tuplify(key)
            count += 1
        return count

    def _get_pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(self.workers, timeout=self.timeout, memory_mb=self.memory_mb)
        return self._pool

    # ------------------------------------------------------------------ grading
    def grade(self, problem: Problem, completions: list[Completion]) -> list[Grade]:
        return self.grade_many([(problem, completions)])

    def grade_many(
        self, items: Iterable[tuple[Problem, list[Completion]]], progress: Progress | None = None
    ) -> list[Grade]:
        """Grades of every completion, in item order; ``progress`` hears the two steps (None: silent)."""
        bar = progress or NO_PROGRESS
        rows, contexts = self._grade_rows(list(items), bar)
        return self._assemble(rows, contexts)

    def grade_stream(
        self,
        problems: Sequence[Problem],
        chunks: Iterable[list[Completion]],
        progress: Progress | None = None,
        total: int | None = None,
    ) -> list[Grade]:
        """``grade_many`` of completions that arrive in chunks, with the same grades in the same order.

        A problem's samples may be spread over several chunks (a resumed run appends them
        later). Each chunk is extracted and decided, then its texts are dropped: memory
        follows the chunk, not the run. Classes are numbered once all chunks are in, per
        problem in sample order, exactly as one ``grade_many`` call numbers them. Problems
        come out in ``problems`` order; a completion of a problem not in ``problems`` raises
        ``KeyError``. ``progress`` gets one stage of ``total`` completions.
        """
        bar = progress or NO_PROGRESS
        bar.stage("grading", total)
        quiet = _ExtractOnly(bar)
        order = {p.id: i for i, p in enumerate(problems)}
        kept: list[_Row] = []
        contexts: list = []
        for chunk in chunks:
            by_problem: dict[str, list[Completion]] = {}
            for completion in chunk:
                if completion.problem_id not in order:
                    raise KeyError(completion.problem_id)
                by_problem.setdefault(completion.problem_id, []).append(completion)
            items = [(problems[order[pid]], by_problem[pid]) for pid in sorted(by_problem, key=order.__getitem__)]
            rows, chunk_contexts = self._grade_rows(items, quiet)
            for row in rows:
                c = row.completion
                row.completion = _Stub(c.problem_id, c.sample_index, c.finish_reason)  # type: ignore[assignment]
                row.group = order[c.problem_id]
                row.p_index += len(contexts)
            contexts.extend(chunk_contexts)
            kept.extend(rows)
            self._checkpoint()
        bar.set_total(len(kept))  # the lines counted beforehand may include unreadable or repeated ones
        kept.sort(key=lambda row: (row.group, row.completion.sample_index))
        return self._assemble(kept, contexts)

    def _grade_rows(self, items: list[tuple[Problem, list[Completion]]], bar: Progress) -> tuple[list[_Row], list]:
        """Extract and decide every completion of ``items``: the rows and per-item contexts to assemble."""
        total = sum(len(c) for _, c in items)
        rows: list[_Row] = []
        contexts: list[tuple[tuple[str, ...], str | None, float | None]] = []
        bar.stage("grading (extract, fast path)", total)
        seen_before = len(self._seen_pairs)
        pending = self._extract_all(items, rows, contexts, bar.advance)
        # the undecided pairs and class keys go to the pool for sympy
        symbolic_items = [k for k in pending if k not in self._verdicts]
        key_items: list[str] = []
        for row in rows:
            norm = row.norm
            if not norm or norm in self._keys:
                continue
            golds, fmt, tol = contexts[row.p_index]
            verdict = self._verdicts.get((golds, norm, fmt, tol))
            if verdict is not None and verdict.correct:
                continue
            if norm not in key_items:
                key_items.append(norm)
        work: list[tuple[str, tuple[Any, ...]]] = [("verdict", (k[0], k[1], k[2], k[3])) for k in symbolic_items]
        work += [("key", (n,)) for n in key_items]
        if work:
            bar.stage("grading (symbolic, pool)", len(work))

            def keep(index: int, result: tuple[str, Any]) -> None:
                # stored as each result arrives, so an interrupt keeps what is done
                status, value = result
                kind, payload = work[index]
                if kind == "verdict":
                    key = (payload[0], payload[1], payload[2], payload[3])
                    if status == OK:
                        self._verdicts[key] = _Verdict(bool(value[0]), bool(value[1]))
                    else:
                        self.stats["timeouts"] += status == TIMEOUT
                        self._verdicts[key] = _Verdict(False, False, timeout=True)
                else:
                    self._keys[payload[0]] = value if status == OK and value is not None else ("s", payload[0])
                bar.advance(1)
                self._checkpoint()

            self._get_pool().run(work, on_result=keep)
            self.stats["pool_items"] += len(work)
        self.stats["pairs"] += len(self._seen_pairs) - seen_before
        return rows, contexts

    def _extract_all(self, items, rows: list[_Row], contexts: list, advance) -> dict[VerdictKey, None]:  # noqa: ANN001
        """Step 1 in the pool: fill ``rows``/``contexts``; returns the distinct undecided pairs.

        A work item holds up to CHUNK_TEXTS completions (CHUNK_CHARS characters) of one or
        more problems, so a run of many small problems costs few round trips.
        """
        work: list[tuple[str, Any]] = []
        owners: list[list[list[_Row]]] = []
        groups: list[tuple] = []
        group_rows: list[list[_Row]] = []
        count = chars = 0

        def flush() -> None:
            nonlocal groups, group_rows, count, chars
            if groups:
                work.append(("prepare-many", (self.rules, groups)))
                owners.append(group_rows)
            groups, group_rows, count, chars = [], [], 0, 0

        for p_index, (problem, completions) in enumerate(items):
            meta = problem.meta or {}
            unit = meta.get("unit") if isinstance(meta, dict) and isinstance(meta.get("unit"), str) else None
            golds_raw = tuple(g for g in problem.answers if isinstance(g, str))
            fmt, tol = problem.answer_format, _tolerance(meta)
            question = problem.question if isinstance(problem.question, str) else None
            contexts.append(((), fmt, tol))
            texts: list[str] = []
            cut: list[bool] = []
            these: list[_Row] = []
            for completion in sorted(completions, key=lambda c: c.sample_index):
                row = _Row(p_index, completion)
                rows.append(row)
                tail = _tail(completion.text)
                if tail is None:
                    advance(1)
                    continue
                these.append(row)
                texts.append(tail)
                cut.append(completion.finish_reason == "length")
                count += 1
                chars += len(tail)
                if count >= CHUNK_TEXTS or chars >= CHUNK_CHARS:
                    groups.append((golds_raw, unit, fmt, tol, texts, cut, question))
                    group_rows.append(these)
                    texts, cut, these = [], [], []
                    flush()
            if texts:
                groups.append((golds_raw, unit, fmt, tol, texts, cut, question))
                group_rows.append(these)
        flush()
        pending: dict[VerdictKey, None] = {}

        def take(owner: list[_Row], value: Any) -> None:
            golds, out = value
            p_index = owner[0].p_index
            _, fmt, tol = contexts[p_index]
            contexts[p_index] = (golds, fmt, tol)
            for row, (raw, rule, norm, fast, key) in zip(owner, out):
                row.raw, row.rule, row.norm = raw, rule, norm
                if not norm:
                    continue
                vkey = (golds, norm, fmt, tol)
                self._seen_pairs.add(vkey)
                if vkey not in self._verdicts:
                    if fast is not None and fast[0] is not None:
                        self._verdicts[vkey] = _Verdict(bool(fast[0]), bool(fast[1]))
                    else:
                        pending[vkey] = None
                if key is not None and norm not in self._keys:
                    self._keys[norm] = key

        if not work:
            return pending
        pool = self._get_pool()
        results = pool.run(work, on_result=lambda i, _r: advance(sum(len(o) for o in owners[i])))
        retry: list[tuple[str, Any]] = []
        retry_rows: list[_Row] = []
        for (_kind, (rules, chunk)), owner, (status, value) in zip(work, owners, results):
            if status == OK:
                for group_owner, group_value in zip(owner, value):
                    take(group_owner, group_value)
                continue
            for (golds_raw, unit, fmt, tol, texts, cut, question), group_owner in zip(chunk, owner):
                for row, text, was_cut in zip(group_owner, texts, cut):  # past the chunk deadline: one at a time
                    retry.append(("prepare-many", (rules, [(golds_raw, unit, fmt, tol, [text], [was_cut], question)])))
                    retry_rows.append(row)
        if retry:
            retried = pool.run(retry)
            errors = [value for status, value in retried if status == ERROR]
            if errors and len(errors) == len(retried) and not any(status == OK for status, _ in results):
                # nothing at all came back: broken workers, not hostile answers
                raise RuntimeError(f"grading workers failed on every item (first error: {errors[0]})")
            for row, (status, value) in zip(retry_rows, retried):
                if status == OK:
                    take([row], value[0])
                else:
                    row.timeout = True
                    self.stats["extraction_timeouts"] += 1
                    self.stats["errors"] = self.stats.get("errors", 0) + (status == ERROR)
        return pending

    def _assemble(self, rows: list[_Row], contexts: list) -> list[Grade]:
        grades: list[Grade] = []
        class_ids: dict[int, dict[Any, int]] = {}
        for row in rows:
            completion = row.completion
            golds, fmt, tol = contexts[row.p_index]
            if row.timeout:
                grades.append(
                    Grade(
                        completion.problem_id,
                        completion.sample_index,
                        None,
                        False,
                        "timeout",
                        None,
                        GRADER_VERSION,
                        None,
                    )
                )
                continue
            if row.raw is None or not row.norm:
                status = "truncated" if completion.finish_reason == "length" else "no_answer"
                grades.append(
                    Grade(
                        completion.problem_id,
                        completion.sample_index,
                        row.raw,
                        False,
                        status,
                        None,
                        GRADER_VERSION,
                        row.rule if row.raw is not None else None,
                    )
                )
                continue
            verdict = self._verdicts[(golds, row.norm, fmt, tol)]
            status = "timeout" if verdict.timeout else ("unparsable" if verdict.unparsable else "ok")
            class_key: Any = ("gold",) if verdict.correct else self._keys.get(row.norm, ("s", row.norm))
            ids = class_ids.setdefault(row.p_index if row.group is None else row.group, {})
            cluster = ids.setdefault(class_key, len(ids))
            grades.append(
                Grade(
                    completion.problem_id,
                    completion.sample_index,
                    row.raw,
                    verdict.correct,
                    status,
                    cluster,
                    GRADER_VERSION,
                    row.rule,
                )
            )
        return grades
