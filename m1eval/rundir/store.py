"""Run folders: the unit of work, durable through crashes and re-readable on a laptop.

``results/<task>/<model>/<run-id>/`` holds

- ``manifest.json``  the run config, versions, host and the state of each stage;
- ``samples.jsonl``  one ``Completion`` per line, append-only, fsynced per batch;
- ``problems.jsonl`` the ``Problem`` records the run used, so later stages need no data set;
- ``batches.jsonl``  one ``BatchTiming`` per engine batch (the budget analysis reads it);
- ``grades.parquet`` one ``Grade`` per completion, rewritten whole by each grading pass;
- ``samples_meta.parquet`` derived from ``samples.jsonl``: every field but the texts (``sample_meta``);
- ``.lock``          held (``flock``) by the one process that may write.

A stage (generate, grade) marks its start and its end with ``RunStore.begin`` and
``RunStore.end``; the manifest keeps each stage's state and the run's start, resumes and end.

A process killed mid-write leaves at most one partial last line; readers report and
skip it, and the next writer (``run`` or ``grade``) truncates it before appending, so
nothing finished is lost and nothing is duplicated. The cut is never silent: the
manifest's ``repairs`` list keeps, per cut, the file, the byte offset and length, a
hash and the start of the cut bytes, and which sample they began to record.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m1eval.records import BatchTiming, Completion, Grade, Problem

MANIFEST = "manifest.json"
# The run folder's format, recorded in every manifest written from now on (a manifest without
# it is format 1). The shims that read older folders name the version they are for, so they can
# be dated and, one day, dropped:
#   1 -> 2 (2026-12): ``Completion.metrics`` split into ``timings`` and ``scores``
#          (``records.Completion.from_dict``); ``sampling.n`` (k before it moved to the run plan,
#          ``records.SamplingConfig.from_dict``) is still read.
FORMAT_VERSION = 2
SAMPLES = "samples.jsonl"
BATCHES = "batches.jsonl"
GRADES = "grades.parquet"
PROBLEMS = "problems.jsonl"
LOCK = ".lock"
# The stage whose start, resumes and end are the run's own (manifest started_at, resumed_at, finished_at).
RUN_STAGE = "generate"
GRADE_STAGE = "grade"


def recorded_extraction(manifest: dict[str, Any]) -> str | None:
    """The extraction policy a run was graded (or is to be graded) with, from its manifest.

    Every stage that grades a run's texts again (re-grading, the cut completions of sequential
    scaling) reads the policy here, so a run graded ``lenient`` is never cut and re-read ``boxed``.
    """
    stage = (manifest.get("stages") or {}).get(GRADE_STAGE) or {}
    policy = stage.get("extraction") if isinstance(stage, dict) else None
    return policy if isinstance(policy, str) and policy else None


class StoreError(Exception):
    """A run folder cannot be used as asked."""


class RunLockedError(StoreError):
    """Another process is writing to this run folder."""


@dataclass
class ReadReport:
    """What reading a JSONL file found besides good rows."""

    path: Path
    rows: int = 0
    truncated_tail: bool = False
    bad_lines: list[int] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)  # torn tails this process cut off the file

    def summary(self) -> str:
        parts = [f"{self.path}: {self.rows} rows"]
        if self.truncated_tail:
            parts.append("last line truncated (ignored; a crashed writer left it)")
        for repair in self.repairs:
            parts.append(describe_repair(repair))
        if self.bad_lines:
            parts.append(f"unreadable lines {self.bad_lines[:10]} ignored")
        return "; ".join(parts)


# The start of a torn record names its sample; bounded patterns on untrusted bytes.
_TORN_PROBLEM = re.compile(rb'"problem_id":\s*"((?:[^"\\]|\\.){0,200})"')
_TORN_INDEX = re.compile(rb'"sample_index":\s*(\d{1,9})')
TORN_PREVIEW_CHARS = 200


def torn_evidence(path: Path, offset: int, cut: bytes) -> dict[str, Any]:
    """What a repair cut off ``path``: where, how much, a hash and preview, and whose record it began."""
    evidence: dict[str, Any] = {
        "file": path.name,
        "at": time.time(),
        "offset": offset,
        "bytes": len(cut),
        "sha256": hashlib.sha256(cut).hexdigest(),
        "preview": cut[:TORN_PREVIEW_CHARS].decode("utf-8", errors="replace"),
    }
    problem = _TORN_PROBLEM.search(cut[:4096])
    index = _TORN_INDEX.search(cut[:4096])
    if problem:
        evidence["problem_id"] = problem.group(1).decode("utf-8", errors="replace")
    if index:
        evidence["sample_index"] = int(index.group(1))
    return evidence


def describe_repair(repair: dict[str, Any]) -> str:
    """One line for a user: 'cut a torn last line of samples.jsonl (812 bytes at 40960: problem x, sample 3)'."""
    whose = ""
    if "problem_id" in repair:
        whose = f": problem {repair['problem_id']!r}" + (
            f", sample {repair['sample_index']}" if "sample_index" in repair else ""
        )
    return (
        f"cut a torn last line of {repair.get('file')} ({repair.get('bytes')} bytes at byte "
        f"{repair.get('offset')}{whose}); a crashed writer left it, the manifest keeps the evidence"
    )


def _last_line(path: Path, block: int = 1 << 16) -> tuple[int | None, bytes]:
    """(offset, bytes) of the last line when the file does not end in a newline, else (None, b"").

    Reads backwards from the end a block at a time, so checking a large file for a torn tail
    costs its last line, not the whole file.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None, b""
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None, b""
        tail = b""
        end = size
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            piece = handle.read(end - start)
            newline = piece.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1, piece[newline + 1 :] + tail
            tail, end = piece + tail, start
        return 0, tail


def safe_name(text: str) -> str:
    """A path component from a model id or path: 'org/Model-1.5B' -> 'org--Model-1.5B'."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "--", text.strip().strip("/"))
    return cleaned.strip("-.") or "unnamed"


def run_path(root: str | os.PathLike[str], task: str, model: str, run_id: str) -> Path:
    return Path(root) / safe_name(task) / safe_name(model) / safe_name(run_id)


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], ReadReport]:
    report = ReadReport(path)
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows, report
    data = path.read_bytes()
    lines = data.split(b"\n")
    # A file that does not end in "\n" has a last line whose write did not finish.
    tail_partial = not data.endswith(b"\n") and len(data) > 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        is_last = number == len(lines)
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if is_last and tail_partial:
                report.truncated_tail = True
            else:
                report.bad_lines.append(number)
            continue
        if is_last and tail_partial:
            # Valid JSON but no newline: the record is complete; keep it.
            pass
        rows.append(row)
    report.rows = len(rows)
    return rows, report


class RunStore:
    """Read and write one run folder. Writing needs ``lock()`` (or ``with store:``)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock_handle: Any = None
        self.repairs: list[dict[str, Any]] = []  # torn tails this store cut (see torn_evidence)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(cls, path: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> RunStore:
        """Open (making it if needed) a run folder for writing; keeps an existing manifest's fields."""
        store = cls(path)
        store.path.mkdir(parents=True, exist_ok=True)
        store.lock()
        if manifest is not None:
            current = store.read_manifest() if (store.path / MANIFEST).exists() else {}
            current.update(manifest)
            store.write_manifest(current)
        return store

    def lock(self) -> None:
        if self._lock_handle is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK, "a+")  # noqa: SIM115 (held open while the lock is held)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunLockedError(
                f"run folder {self.path} is being written by {holder}; "
                "wait for it to finish or stop it (the lock is released when that process exits)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._lock_handle = handle
        repairs = [r for r in (self._repair_tail(self.path / SAMPLES), self._repair_tail(self.path / BATCHES)) if r]
        if repairs:
            self.repairs.extend(repairs)
            if (self.path / MANIFEST).exists():
                try:
                    manifest = self.read_manifest()
                except StoreError:
                    return  # the evidence stays in self.repairs; a broken manifest is reported where it is read
                manifest["repairs"] = [*manifest.get("repairs", []), *repairs]
                self.write_manifest(manifest)

    def unlock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> RunStore:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def _require_lock(self) -> None:
        if self._lock_handle is None:
            raise StoreError(f"run folder {self.path}: writing needs the lock (use RunStore.create or `with store:`)")

    @staticmethod
    def _repair_tail(path: Path) -> dict[str, Any] | None:
        """Cut a partial last line left by a killed writer, so appends start on a fresh line.

        Returns the evidence of a cut (``torn_evidence``), None when nothing was cut.
        """
        if not path.exists():
            return None
        cut, last = _last_line(path)
        if cut is None:
            return None
        try:
            json.loads(last)
        except (json.JSONDecodeError, UnicodeDecodeError):
            with path.open("r+b") as handle:
                handle.truncate(cut)
            return torn_evidence(path, cut, last)
        with path.open("ab") as handle:  # a complete record missing only its newline
            handle.write(b"\n")
        return None

    # ------------------------------------------------------------------ manifest

    def read_manifest(self) -> dict[str, Any]:
        path = self.path / MANIFEST
        if not path.exists():
            raise StoreError(f"{self.path} is not a run folder: no {MANIFEST}")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}: invalid JSON: {exc}") from exc

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomic replace, so a crash never leaves half a manifest."""
        self._require_lock()
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, self.path / MANIFEST)

    def update_manifest(self, **changes: Any) -> dict[str, Any]:
        manifest = self.read_manifest() if (self.path / MANIFEST).exists() else {}
        manifest.update(changes)
        self.write_manifest(manifest)
        return manifest

    def set_stage(self, stage: str, state: str, **details: Any) -> None:
        """Record a stage's state ('pending', 'running', 'done', 'interrupted', 'failed') with a timestamp."""
        self._stage(self.read_manifest() if (self.path / MANIFEST).exists() else {}, stage, state, details)

    def _stage(self, manifest: dict[str, Any], stage: str, state: str, details: dict[str, Any]) -> None:
        now = time.time()
        if stage == RUN_STAGE and state == "running":  # the run's own clock: first start, then each resume
            if manifest.get("started_at"):
                manifest["resumed_at"] = [*manifest.get("resumed_at", []), now]
            else:
                manifest["started_at"], manifest["resumed_at"] = now, []
            manifest["finished_at"] = None
        elif stage == RUN_STAGE and state == "done":
            manifest["finished_at"] = now
        manifest.setdefault("stages", {})[stage] = {"state": state, "at": now, **details}
        self.write_manifest(manifest)

    def begin(self, stage: str, **details: Any) -> None:
        """A stage starts: state 'running' with ``details``; for generation (``RUN_STAGE``) also the
        run's ``started_at`` the first time, a new ``resumed_at`` entry later, ``finished_at`` cleared."""
        self.set_stage(stage, "running", **details)

    def end(self, stage: str, state: str = "done", **details: Any) -> None:
        """A stage ends 'done', 'interrupted' or 'failed' with ``details``; generation done sets ``finished_at``."""
        if state not in ("done", "interrupted", "failed"):
            raise ValueError(f"a stage ends done, interrupted or failed, not {state!r}")
        self.set_stage(stage, state, **details)

    # ------------------------------------------------------------------ problems

    def write_problems(self, problems: Iterable[Problem]) -> None:
        """Store the problems of the run (atomic); a larger run later rewrites it as a superset."""
        self._require_lock()
        tmp = self.path / (PROBLEMS + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for problem in problems:
                handle.write(json.dumps(problem.to_dict(), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path / PROBLEMS)

    def read_problems(self) -> list[Problem]:
        rows, report = _read_jsonl(self.path / PROBLEMS)
        if not (self.path / PROBLEMS).exists():
            raise StoreError(f"{self.path}: no {PROBLEMS}")
        if report.truncated_tail or report.bad_lines:
            raise StoreError(report.summary())
        return [Problem.from_dict(r) for r in rows]

    # ------------------------------------------------------------------ samples

    def append_samples(self, completions: Iterable[Completion], timing: BatchTiming | None = None) -> int:
        """Append one batch durably: samples first, then its timing, each flushed and fsynced."""
        self._require_lock()
        lines = [json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in completions]
        if lines:
            with (self.path / SAMPLES).open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
                handle.flush()
                os.fsync(handle.fileno())
        if timing is not None:
            with (self.path / BATCHES).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(timing.to_dict()) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return len(lines)

    def read_samples(self) -> tuple[list[Completion], ReadReport]:
        """All stored completions with their texts (first copy wins if a pair was ever written twice).

        This holds every text in memory: stages that need texts of a large run stream them
        (``m1eval.rundir.sample_lines.scan_samples``), analyses read the metadata view
        (``m1eval.rundir.sample_meta``).
        """
        from m1eval.rundir.sample_lines import ScanState, scan_samples

        report = ReadReport(self.path / SAMPLES)
        state = ScanState()
        out: list[Completion] = []
        seen: set[tuple[str, int]] = set()
        for chunk in scan_samples(self.path / SAMPLES, state):
            for line in chunk:
                if line.completion.key not in seen:
                    seen.add(line.completion.key)
                    out.append(line.completion)
        report.rows, report.truncated_tail, report.bad_lines = len(out), state.truncated_tail, state.bad_lines
        self.note_repairs(report)
        return out, report

    def note_repairs(self, report: ReadReport) -> None:
        """Add the torn tails this store cut off samples.jsonl to ``report``: still a skipped line."""
        report.repairs = [r for r in self.repairs if r.get("file") == SAMPLES]
        if report.repairs:  # the torn line was cut when this store took the lock
            report.truncated_tail = True

    def read_batches(self) -> tuple[list[BatchTiming], ReadReport]:
        rows, report = _read_jsonl(self.path / BATCHES)
        return [BatchTiming.from_dict(r) for r in rows], report

    def finished(self) -> set[tuple[str, int]]:
        """The (problem_id, sample_index) pairs already stored: what a resumed run skips.

        Read from the metadata view (``m1eval.rundir.sample_meta``): no text is parsed for lines it
        already indexed.
        """
        from m1eval.rundir.sample_meta import read_meta

        return read_meta(self).keys()

    # ------------------------------------------------------------------ grades

    def write_grades(self, grades: Iterable[Grade]) -> Path:
        import pandas as pd

        self._require_lock()
        frame = pd.DataFrame([g.to_dict() for g in grades], columns=list(Grade.__dataclass_fields__))
        frame["cluster"] = frame["cluster"].astype("Int64")
        frame["sample_index"] = frame["sample_index"].astype("int64")
        frame["correct"] = frame["correct"].astype(bool)
        tmp = self.path / (GRADES + ".tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, self.path / GRADES)
        return self.path / GRADES

    def read_grades(self):  # -> pandas.DataFrame
        import pandas as pd

        path = self.path / GRADES
        if not path.exists():
            raise StoreError(f"{self.path}: no {GRADES}; run `m1eval grade {self.path}` first")
        return pd.read_parquet(path)

    def has_grades(self) -> bool:
        return (self.path / GRADES).exists()


def repairs_since(run_dir: str | os.PathLike[str], since: float) -> list[dict[str, Any]]:
    """The torn-tail repairs the manifest recorded at or after ``since`` (for a command to report)."""
    try:
        manifest = RunStore(run_dir).read_manifest()
    except StoreError:
        return []
    return [r for r in manifest.get("repairs", []) if isinstance(r, dict) and float(r.get("at", 0)) >= since]


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand each path to the run folders (folders with a manifest) at or below it."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if (path / MANIFEST).exists():
            runs.append(path)
        elif path.is_dir():
            runs.extend(sorted(p.parent for p in path.rglob(MANIFEST)))
        else:
            raise StoreError(f"{path}: no such run folder")
    if not runs:
        raise StoreError("no run folders (folders with a manifest.json) found in " + ", ".join(map(str, paths)))
    return runs
