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
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m1eval.grading.extract import DEFAULT_POLICY, MAX_SCAN_CHARS, canonical_policy, parse_policy, visible_text
from m1eval.grading.pool import ERROR, OK, TIMEOUT, WorkerPool
from m1eval.records import Completion, Grade, Problem

# Bump whenever any verdict can change (policy, normalisation, parser, tolerance).
GRADER_VERSION = "m1eval-grading-1.3"

CHUNK_TEXTS = 64
CHUNK_CHARS = 2_000_000
CACHE_FILE = "grade_cache.json"

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

    def __init__(self, workers: int | None = None, timeout: float = 5.0, memory_mb: int = 1024,
                 fallbacks: bool = False, extraction: str | None = None) -> None:
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1 (got {self.workers})")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds (got {timeout})")
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.extraction = canonical_policy(extraction if extraction is not None else
                                           ("lenient" if fallbacks else DEFAULT_POLICY))
        self.rules = parse_policy(self.extraction)
        self._pool: WorkerPool | None = None
        self._verdicts: dict[VerdictKey, _Verdict] = {}
        self._keys: dict[str, tuple] = {}
        self._seen_pairs: set[VerdictKey] = set()
        self.stats = {"pairs": 0, "pool_items": 0, "timeouts": 0, "extraction_timeouts": 0}

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
        verdicts = [[list(k[0]), k[1], k[2], k[3], v.correct, v.unparsable]
                    for k, v in self._verdicts.items() if not v.timeout]
        keys = [[n, list(k)] for n, k in self._keys.items() if k != ("pending",)]
        return {"grader_version": GRADER_VERSION, "verdicts": verdicts, "keys": keys}

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
        return self.grade_many([(problem, completions)], progress=False)

    def grade_many(self, items: Iterable[tuple[Problem, list[Completion]]], progress: bool = True) -> list[Grade]:
        from m1eval.progress import make_progress

        items = list(items)
        total = sum(len(c) for _, c in items)
        rows: list[_Row] = []
        contexts: list[tuple[tuple[str, ...], str | None, float | None]] = []
        with make_progress("completions", transient=not progress) as bar:
            task = bar.add_task("grading (extract, fast path)", total=total, visible=progress)
            seen_before = len(self._seen_pairs)
            pending = self._extract_all(items, rows, contexts, lambda n: bar.advance(task, n))
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
            work = [("verdict", (k[0], k[1], k[2], k[3])) for k in symbolic_items] + [("key", (n,)) for n in key_items]
            if work:
                sym_task = bar.add_task("grading (symbolic, pool)", total=len(work), visible=progress)

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
                    bar.advance(sym_task)

                self._get_pool().run(work, on_result=keep)
                self.stats["pool_items"] += len(work)
            self.stats["pairs"] += len(self._seen_pairs) - seen_before
        return self._assemble(rows, contexts)

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
            contexts.append(((), fmt, tol))
            texts: list[str] = []
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
                count += 1
                chars += len(tail)
                if count >= CHUNK_TEXTS or chars >= CHUNK_CHARS:
                    groups.append((golds_raw, unit, fmt, tol, texts))
                    group_rows.append(these)
                    texts, these = [], []
                    flush()
            if texts:
                groups.append((golds_raw, unit, fmt, tol, texts))
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
            for (golds_raw, unit, fmt, tol, texts), group_owner in zip(chunk, owner):
                for row, text in zip(group_owner, texts):  # past the chunk deadline: one at a time
                    retry.append(("prepare-many", (rules, [(golds_raw, unit, fmt, tol, [text])])))
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
                grades.append(Grade(completion.problem_id, completion.sample_index, None, False, "timeout", None,
                                    GRADER_VERSION, None))
                continue
            if row.raw is None or not row.norm:
                status = "truncated" if completion.finish_reason == "length" else "no_answer"
                grades.append(Grade(completion.problem_id, completion.sample_index, row.raw, False, status, None,
                                    GRADER_VERSION, row.rule if row.raw is not None else None))
                continue
            verdict = self._verdicts[(golds, row.norm, fmt, tol)]
            status = "timeout" if verdict.timeout else ("unparsable" if verdict.unparsable else "ok")
            class_key: Any = ("gold",) if verdict.correct else self._keys.get(row.norm, ("s", row.norm))
            ids = class_ids.setdefault(row.p_index, {})
            cluster = ids.setdefault(class_key, len(ids))
            grades.append(Grade(completion.problem_id, completion.sample_index, row.raw, verdict.correct, status,
                                cluster, GRADER_VERSION, row.rule))
        return grades


class GradingInterrupted(Exception):
    """``grade_run`` was interrupted; finished verdicts were saved for the next run."""


def recorded_extraction(manifest: dict[str, Any]) -> str | None:
    """The extraction policy a run was graded (or is to be graded) with, from its manifest."""
    stage = (manifest.get("stages") or {}).get("grade") or {}
    policy = stage.get("extraction") if isinstance(stage, dict) else None
    return policy if isinstance(policy, str) and policy else None


def grade_run(run_dir, *, workers: int | None = None, progress: bool = True,  # noqa: ANN001, ANN201
              extraction: str | None = None):
    """Re-grade a stored run: read problems and samples, write grades.parquet, record the stage.

    ``extraction`` is the policy (default: the one recorded in the manifest, else
    ``boxed``); it is recorded in ``stages.grade.extraction``. On Ctrl-C/SIGTERM the
    verdicts already computed are saved to ``grade_cache.json`` (used by the next
    ``grade``), the stage is marked ``interrupted`` and ``GradingInterrupted`` is raised.
    """
    import pandas as pd

    from m1eval.store import RunStore, StoreError

    started = time.time()
    with RunStore(run_dir) as store:
        manifest = store.read_manifest()
        policy = canonical_policy(extraction or recorded_extraction(manifest) or DEFAULT_POLICY)
        problems = store.read_problems()
        samples, report = store.read_samples()
        by_problem: dict[str, list[Completion]] = {}
        for completion in samples:
            by_problem.setdefault(completion.problem_id, []).append(completion)
        known = {p.id for p in problems}
        unknown = sorted(set(by_problem) - known)
        if unknown:
            raise StoreError(f"{store.path}: samples.jsonl has completions of problems not in problems.jsonl: {unknown[:5]}")
        items = [(p, by_problem[p.id]) for p in problems if p.id in by_problem]
        cache_path = Path(store.path) / CACHE_FILE
        grader = Grader(workers=workers, extraction=policy)
        try:
            if cache_path.exists():
                try:
                    grader.import_cache(json.loads(cache_path.read_text(encoding="utf-8")))
                except (OSError, ValueError, TypeError):
                    pass  # a damaged cache only costs time
            grades = grader.grade_many(items, progress=progress)
        except KeyboardInterrupt:
            grader.close(force=True)
            kept = grader.export_cache()
            tmp = cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(tmp, cache_path)
            store.set_stage("grade", "interrupted", grader_version=GRADER_VERSION, extraction=policy,
                            seconds=round(time.time() - started, 3))
            raise GradingInterrupted(
                f"grading interrupted: {len(kept['verdicts'])} verdicts and {len(kept['keys'])} class keys kept in "
                f"{cache_path}; run `m1eval grade {store.path}` again to finish") from None
        finally:
            grader.close()
        store.write_grades(grades)
        cache_path.unlink(missing_ok=True)
        seconds = time.time() - started
        statuses: dict[str, int] = {}
        rules: dict[str, int] = {}
        for g in grades:
            statuses[g.status] = statuses.get(g.status, 0) + 1
            if g.extracted_by:
                rules[g.extracted_by] = rules.get(g.extracted_by, 0) + 1
        store.set_stage("grade", "done", grader_version=GRADER_VERSION, extraction=policy, seconds=round(seconds, 3),
                        completions=len(grades), statuses=statuses, extracted_by=rules,
                        timeouts=statuses.get("timeout", 0), skipped_lines=len(report.bad_lines),
                        truncated_tail=report.truncated_tail)
        frame = store.read_grades()
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
