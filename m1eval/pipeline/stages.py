"""Run-level stages after generation: grade a stored run, then summarise it.

A stage works on a run folder: it reads what the store holds, calls the library that
does the work (``grading`` checks answers, ``report`` summarises), writes the result back
and marks its begin and end in the manifest (``RunStore.begin``/``end``). Keeping the
folder side here lets ``grading/`` depend on nothing but ``records``. ``m1eval grade``,
``m1eval run`` and the scripts call these functions; they print nothing (progress goes to
a ``records.Progress`` the caller passes).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m1eval.grading.extract import DEFAULT_POLICY, canonical_policy
from m1eval.grading.grader import GRADER_VERSION, Grader
from m1eval.records import Progress
from m1eval.rundir.golds import PROBLEM_HASHES, ProblemCheck, check_problems, problem_hashes
from m1eval.rundir.runfiles import file_stat, open_read, read_bytes, write_replace
from m1eval.rundir.sample_lines import ScanState
from m1eval.rundir.sample_meta import MetaBuilder, SampleMeta, save_meta, scan_meta
from m1eval.rundir.store import GRADE_STAGE, SAMPLES, ReadReport, RunStore, StoreError, recorded_extraction

CACHE_FILE = "grade_cache.json"  # verdicts an interrupted grade kept for the next one


class GradingInterrupted(Exception):
    """``grade_run`` was interrupted; finished verdicts were saved for the next run."""


class ProblemsModifiedError(StoreError):
    """problems.jsonl no longer matches the hashes the manifest recorded when the run was generated."""

    def __init__(self, message: str, check: ProblemCheck) -> None:
        super().__init__(message)
        self.check = check


def record_extraction(run_dir: str | os.PathLike[str], policy: str, explicit: bool) -> None:
    """Note the policy a later ``grade`` is to use (``m1eval run --no-grade``); a graded run's
    recorded policy changes only when ``explicit`` (``--extraction``) names another one."""
    with RunStore(run_dir) as store:
        recorded = recorded_extraction(store.read_manifest())
        if recorded is None or (explicit and recorded != policy):
            store.set_stage(GRADE_STAGE, "pending", extraction=policy)


def grade_run(
    run_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    extraction: str | None = None,
    progress: Progress | None = None,
    allow_modified: bool = False,
):  # -> pandas.DataFrame (pandas imported lazily)
    """Re-grade a stored run: read problems and samples, write grades.parquet, record the stage.

    ``extraction`` is the policy (default: the one recorded in the manifest, else
    ``boxed``); it is recorded in ``stages.grade.extraction``. On Ctrl-C/SIGTERM the
    verdicts already computed are saved to ``grade_cache.json`` (used by the next
    ``grade``), the stage is marked ``interrupted`` and ``GradingInterrupted`` is raised.
    The file is also written every ``CHECKPOINT_SECONDS`` while grading, so a grade killed
    without warning (SIGKILL) keeps what it had decided until then.

    A run whose problems.jsonl differs from the hashes its manifest recorded (an edited gold)
    raises ``ProblemsModifiedError`` naming the problems, unless ``allow_modified``: then it is
    graded and the stage records the modified ids (``stages.grade.problems``).
    """
    return grade_stage(
        run_dir, workers=workers, extraction=extraction, progress=progress, allow_modified=allow_modified
    ).grades


@dataclass
class GradedRun:
    """What one grading pass read and wrote: the grades and the samples' metadata (for the summary)."""

    path: Path
    grades: Any  # pandas.DataFrame, as written to grades.parquet
    meta: SampleMeta
    problems: ProblemCheck | None = None  # problems.jsonl against the manifest's hashes (m1eval.rundir.golds)


def _count_lines(path: Path, block: int = 8 * 1024 * 1024) -> int:
    """Lines in a file, read in blocks (the progress bar's total; no line is parsed)."""
    if file_stat(path) is None:
        return 0
    count = 0
    with open_read(path) as handle:
        while data := handle.read(block):
            count += data.count(b"\n")
    return count


def grade_stage(
    run_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    extraction: str | None = None,
    progress: Progress | None = None,
    allow_modified: bool = False,
) -> GradedRun:
    """``grade_run`` that also gives back the samples' metadata it read, so a summary need not read again.

    samples.jsonl is parsed once, in chunks (``m1eval.sample_meta.scan_meta``): each chunk's
    texts are graded and dropped, its metadata kept; the metadata view is saved with the grades.
    """
    import pandas as pd

    started = time.time()
    with RunStore(run_dir) as store:
        manifest = store.read_manifest()
        policy = canonical_policy(extraction or recorded_extraction(manifest) or DEFAULT_POLICY)
        problems = store.read_problems()
        check = _checked_problems(store, manifest, problems, allow_modified)
        samples_path = Path(store.path) / SAMPLES
        stat = file_stat(samples_path)
        signature = (stat.st_size, stat.st_mtime_ns) if stat is not None else None
        total = _count_lines(samples_path)
        builder, state = MetaBuilder(), ScanState()
        cache_path = Path(store.path) / CACHE_FILE
        grader = Grader(workers=workers, extraction=policy, on_checkpoint=lambda kept: _save_cache(cache_path, kept))
        store.begin(GRADE_STAGE, grader_version=GRADER_VERSION, extraction=policy, problems=check.to_dict())
        try:
            if file_stat(cache_path) is not None:
                try:
                    grader.import_cache(json.loads(read_bytes(cache_path).decode("utf-8")))
                except (OSError, ValueError, TypeError):
                    pass  # a damaged cache only costs time
            try:
                grades = grader.grade_stream(problems, scan_meta(store, builder, state), progress=progress, total=total)
            except KeyError as exc:
                raise StoreError(
                    f"{store.path}: samples.jsonl has completions of problems not in problems.jsonl: [{exc.args[0]!r}]"
                ) from None
        except KeyboardInterrupt:
            grader.close(force=True)
            kept = grader.export_cache()
            _save_cache(cache_path, kept)
            store.end(
                GRADE_STAGE,
                "interrupted",
                grader_version=GRADER_VERSION,
                extraction=policy,
                seconds=round(time.time() - started, 3),
            )
            raise GradingInterrupted(
                f"grading interrupted: {len(kept['verdicts'])} verdicts and {len(kept['keys'])} class keys kept in "
                f"{cache_path}; run `m1eval grade {store.path}` again to finish"
            ) from None
        except Exception as exc:
            store.end(
                GRADE_STAGE,
                "failed",
                grader_version=GRADER_VERSION,
                extraction=policy,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            raise
        finally:
            grader.close()
        meta_frame = builder.frame()
        if signature is not None:
            save_meta(store, meta_frame, state, signature)
        store.write_grades(grades)
        cache_path.unlink(missing_ok=True)
        seconds = time.time() - started
        statuses: dict[str, int] = {}
        rules: dict[str, int] = {}
        for g in grades:
            statuses[g.status] = statuses.get(g.status, 0) + 1
            if g.extracted_by:
                rules[g.extracted_by] = rules.get(g.extracted_by, 0) + 1
        store.end(
            GRADE_STAGE,
            "done",
            grader_version=GRADER_VERSION,
            extraction=policy,
            seconds=round(seconds, 3),
            completions=len(grades),
            statuses=statuses,
            extracted_by=rules,
            timeouts=statuses.get("timeout", 0),
            skipped_lines=len(state.bad_lines),
            truncated_tail=state.truncated_tail or any(r.get("file") == SAMPLES for r in store.repairs),
            problems=check.to_dict(),
        )
        frame = store.read_grades()
        report = ReadReport(
            samples_path, rows=len(meta_frame), truncated_tail=state.truncated_tail, bad_lines=list(state.bad_lines)
        )
        store.note_repairs(report)
    frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    return GradedRun(Path(run_dir), frame, SampleMeta(meta_frame, report), check)


def _save_cache(path: Path, kept: dict[str, Any]) -> None:
    """The grader's memo to ``grade_cache.json``, atomically: written when interrupted and every
    ``grading.grader.CHECKPOINT_SECONDS`` while grading, read by the next ``grade`` of the run."""
    data = json.dumps(kept).encode("utf-8")
    write_replace(path, lambda handle: handle.write(data), tmp=path.with_suffix(".tmp"))


def _checked_problems(store: RunStore, manifest: dict[str, Any], problems: list, allow_modified: bool) -> ProblemCheck:
    """Refuse (or, allowed, let through) problems.jsonl that differs from the manifest's hashes.

    A run verified by its older whole-subset hash gets per-problem hashes recorded now, so a
    later edit is named by id.
    """
    check = check_problems(manifest, problems)
    if check.is_modified and not allow_modified:
        raise ProblemsModifiedError(
            f"{store.path}: {check.describe()}; grading would score the run against other golds than it was "
            "generated for. Restore problems.jsonl (the task's data set holds the rows), or grade it anyway "
            "as a modified run",
            check,
        )
    task = manifest.get("task")
    if check.state == "verified" and isinstance(task, dict) and PROBLEM_HASHES not in task:
        store.update_manifest(task={**task, PROBLEM_HASHES: problem_hashes(problems)})
    return check


def summarize(run_dir: str | os.PathLike[str], graded: GradedRun | None = None) -> str:
    """The report table of one graded run (the last step of ``m1eval run``); ``graded``: what
    grading just read and wrote, used instead of reading the folder again."""
    from m1eval.analysis.report import render_report, summarize_run
    from m1eval.rundir.rundata import assemble_run, load_run

    if graded is None:
        return render_report([summarize_run(load_run(run_dir))])
    store = RunStore(run_dir)
    run = assemble_run(store, store.read_manifest(), graded.meta, graded.grades, with_text=False)
    return render_report([summarize_run(run)])


def grade_and_summarize(
    run_dir: str | os.PathLike[str], *, extraction: str | None = None, progress: Progress | None = None
) -> str:
    """Grade a freshly generated run and return its report table (samples.jsonl read once, by grading)."""
    return summarize(run_dir, grade_stage(run_dir, extraction=extraction, progress=progress))
