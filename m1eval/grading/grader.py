"""Grade whole runs: extraction, cached verdicts, equivalence classes, and a guarded pool.

A 500 x 64 run holds 32,000 completions but only a few thousand distinct
(gold, normalised answer) pairs, and most of those are numbers. So the grader
normalises everything in-process, decides what the string/number/shape tiers can
decide, and sends only the remaining distinct pairs (and distinct answers whose class
key needs algebra) to worker processes with a hard time and memory limit. Verdicts and
keys are memoised on the Grader, so grading more samples of the same run is cheaper.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from m1eval.grading import clusters
from m1eval.grading.equivalence import prepare
from m1eval.grading.extract import extract_answer
from m1eval.grading.pool import OK, TIMEOUT, WorkerPool
from m1eval.grading.tasks import verdict_any
from m1eval.records import Completion, Grade, Problem

# Bump whenever any verdict can change (policy, normalisation, parser, tolerance).
GRADER_VERSION = "m1eval-grading-1.2"

VerdictKey = tuple[tuple[str, ...], str, "str | None", "float | None"]


@dataclass
class _Verdict:
    correct: bool
    unparsable: bool = False
    timeout: bool = False


def _tolerance(meta: dict[str, Any]) -> float | None:
    value = meta.get("tolerance") if isinstance(meta, dict) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Grader:
    """Grades completions against problems; use as a context manager so workers are stopped."""

    def __init__(self, workers: int | None = None, timeout: float = 5.0, memory_mb: int = 1024,
                 fallbacks: bool = False) -> None:
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1 (got {self.workers})")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds (got {timeout})")
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.fallbacks = fallbacks
        self._pool: WorkerPool | None = None
        self._verdicts: dict[VerdictKey, _Verdict] = {}
        self._keys: dict[str, tuple] = {}
        self._normalized: dict[tuple[str, Any], str] = {}
        self.stats = {"pairs": 0, "pool_items": 0, "timeouts": 0}

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

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
        # 1. extract and normalise in-process
        rows: list[tuple[int, Completion, str | None, str | None]] = []
        contexts: list[tuple[tuple[str, ...], str | None, float | None]] = []
        pending: dict[VerdictKey, None] = {}
        with make_progress("completions", transient=not progress) as bar:
            task = bar.add_task("grading (fast path)", total=total, visible=progress)
            for p_index, (problem, completions) in enumerate(items):
                meta = problem.meta or {}
                golds = tuple(dict.fromkeys(prepare(g, meta) for g in problem.answers if isinstance(g, str)))
                tolerance = _tolerance(meta)
                contexts.append((golds, problem.answer_format, tolerance))
                for completion in sorted(completions, key=lambda c: c.sample_index):
                    raw = extract_answer(completion.text, fallbacks=self.fallbacks)
                    norm = self._normalize(raw, meta) if raw is not None else None
                    rows.append((p_index, completion, raw, norm))
                    if norm:
                        key = (golds, norm, problem.answer_format, tolerance)
                        if key not in self._verdicts and key not in pending:
                            pending[key] = None
                    bar.advance(task)
            # 2. fast verdicts; the undecided go to the pool
            symbolic_items: list[VerdictKey] = []
            for key in pending:
                golds, norm, fmt, tol = key
                result, unparsable = verdict_any(golds, norm, fmt, tol, False)
                if result is None:
                    symbolic_items.append(key)
                else:
                    self._verdicts[key] = _Verdict(result, unparsable)
            self.stats["pairs"] += len(pending)
            # 3. class keys of distinct answers that are not correct
            key_items: list[str] = []
            for p_index, _completion, _raw, norm in rows:
                if not norm or norm in self._keys:
                    continue
                golds, fmt, tol = contexts[p_index]
                verdict = self._verdicts.get((golds, norm, fmt, tol))
                if verdict is not None and verdict.correct:
                    continue
                fast = clusters.answer_key(norm, symbolic_ok=False)
                if fast is None:
                    if norm not in key_items:
                        key_items.append(norm)
                    self._keys[norm] = ("pending",)
                else:
                    self._keys[norm] = fast
            # 4. the pool: one item per distinct undecided pair or key
            work = [("verdict", (k[0], k[1], k[2], k[3])) for k in symbolic_items] + [("key", (n,)) for n in key_items]
            if work:
                sym_task = bar.add_task("grading (symbolic, pool)", total=len(work), visible=progress)
                pool = self._get_pool()
                results = pool.run(work, on_result=lambda _i, _r: bar.advance(sym_task))
                self.stats["pool_items"] += len(work)
                for (kind, payload), (status, value) in zip(work, results):
                    if kind == "verdict":
                        key = (payload[0], payload[1], payload[2], payload[3])
                        if status == OK:
                            correct, unparsable = value
                            self._verdicts[key] = _Verdict(bool(correct), bool(unparsable))
                        else:
                            self.stats["timeouts"] += status == TIMEOUT
                            self._verdicts[key] = _Verdict(False, False, timeout=True)
                    else:
                        norm = payload[0]
                        self._keys[norm] = value if status == OK and value is not None else ("s", norm)
        return self._assemble(rows, contexts)

    def _normalize(self, raw: str, meta: dict[str, Any]) -> str:
        unit = meta.get("unit") if isinstance(meta, dict) else None
        cache_key = (raw, unit if isinstance(unit, str) else None)
        norm = self._normalized.get(cache_key)
        if norm is None:
            if len(self._normalized) > 500_000:
                self._normalized.clear()
            norm = self._normalized[cache_key] = prepare(raw, meta)
        return norm

    def _assemble(self, rows, contexts) -> list[Grade]:  # noqa: ANN001
        grades: list[Grade] = []
        class_ids: dict[int, dict[Any, int]] = {}
        for p_index, completion, raw, norm in rows:
            golds, fmt, tol = contexts[p_index]
            if raw is None or not norm:
                status = "truncated" if completion.finish_reason == "length" else "no_answer"
                grades.append(Grade(completion.problem_id, completion.sample_index, raw, False, status, None, GRADER_VERSION))
                continue
            verdict = self._verdicts[(golds, norm, fmt, tol)]
            status = "timeout" if verdict.timeout else ("unparsable" if verdict.unparsable else "ok")
            class_key: Any = ("gold",) if verdict.correct else self._keys.get(norm, ("s", norm))
            if class_key == ("pending",):
                class_key = ("s", norm)
            ids = class_ids.setdefault(p_index, {})
            cluster = ids.setdefault(class_key, len(ids))
            grades.append(Grade(completion.problem_id, completion.sample_index, raw, verdict.correct, status,
                                cluster, GRADER_VERSION))
        return grades


def grade_run(run_dir, *, workers: int | None = None, progress: bool = True):  # noqa: ANN001, ANN201
    """Re-grade a stored run: read problems and samples, write grades.parquet, record the stage."""
    import pandas as pd

    from m1eval.store import RunStore, StoreError

    started = time.time()
    with RunStore(run_dir) as store:
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
        with Grader(workers=workers) as grader:
            grades = grader.grade_many(items, progress=progress)
        store.write_grades(grades)
        seconds = time.time() - started
        store.set_stage("grade", "done", grader_version=GRADER_VERSION, seconds=round(seconds, 3),
                        completions=len(grades), skipped_lines=len(report.bad_lines),
                        truncated_tail=report.truncated_tail)
        frame = store.read_grades()
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
