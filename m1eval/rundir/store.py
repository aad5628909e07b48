"""Run folders: the unit of work, durable through crashes and re-readable on a laptop.

``results/<task>/<model>/<run-id>/`` holds

- ``manifest.json``  the run config, versions, host and the state of each stage;
- ``samples.jsonl``  one ``Completion`` per line, append-only, fsynced per batch;
- ``problems.jsonl`` the ``Problem`` records the run used, so later stages need no data set;
- ``batches.jsonl``  one ``BatchTiming`` per engine batch (the budget analysis reads it);
- ``grades.parquet`` one ``Grade`` per completion, rewritten whole by each grading pass;
- ``samples_meta.parquet`` derived from ``samples.jsonl``: every field but the texts (``sample_meta``);
- ``.lock``          locked (a POSIX record lock, see ``RunStore.lock``) by the one process that may write.

Every file is opened through ``m1eval.rundir.runfiles``: a run file that is a symbolic link or not
a regular file (or a run folder that is a link) is refused with one line, never followed.

A stage (generate, grade) marks its start and its end with ``RunStore.begin`` and
``RunStore.end``; the manifest keeps each stage's state and the run's start, resumes and end.

A process killed mid-write leaves at most one partial last line; readers report and
skip it, and the next writer (``run`` or ``grade``) truncates it before appending, so
nothing finished is lost and nothing is duplicated. The cut is never silent: the
manifest's ``repairs`` list keeps, per cut, the file, the byte offset and length, a
hash and the start of the cut bytes, and which sample they began to record.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import signal
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from m1eval.records import BatchTiming, Completion, Grade, Problem

# the errors live in ``errors`` (shared with ``runfiles``); callers import them from here as ever
from m1eval.rundir.errors import RunLockedError, StoreError, StoreWriteError
from m1eval.rundir.errors import UnsafeRunFile as UnsafeRunFile
from m1eval.rundir.runfiles import (
    check_folder,
    file_exists,
    open_append,
    open_lock,
    open_read,
    open_update,
    read_bytes,
    write_replace,
)

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
    with open_read(path) as handle:
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


# The longest run folder name, in UTF-8 bytes (file systems allow 255; room for a suffix).
MAX_RUN_NAME_BYTES = 200


def normal_run_id(run_id: str) -> str:
    """A run id as it is stored and compared: NFC, so 'é' typed composed or decomposed is one id."""
    return unicodedata.normalize("NFC", run_id)


def _name_char(ch: str) -> bool:
    return ch in "._+-" or unicodedata.category(ch)[0] in "LMN"  # letters (any script), their marks, digits


def run_folder_name(run_id: str) -> str:
    """The folder name of a run id: 'β-run' -> 'β-run', 'my run/2' -> 'my--run--2'.

    Unicode letters, combining marks and digits are kept (NFC), so ids in other scripts stay
    distinct; every other run of characters (spaces, slashes, symbols, controls) becomes '--'.
    Two ids can still share a name ('a b' and 'a--b'): the manifest records the id and a resume
    under another id is refused (``m1eval.pipeline.runner``). An id with no letter or digit,
    or one too long for a folder name, is refused rather than reduced to a placeholder.
    """
    pieces = ("".join(run) if kept else "--" for kept, run in groupby(normal_run_id(run_id).strip(), _name_char))
    cleaned = "".join(pieces).strip("-.")
    if not any(unicodedata.category(ch)[0] in "LN" for ch in cleaned):
        raise StoreError(f"run id {run_id!r} has no letter or digit to name its folder with")
    if len(cleaned.encode("utf-8")) > MAX_RUN_NAME_BYTES:
        raise StoreError(
            f"run id {run_id[:40]!r}... is too long for a folder name "
            f"({len(cleaned.encode('utf-8'))} bytes, at most {MAX_RUN_NAME_BYTES})"
        )
    return cleaned


def run_path(root: str | os.PathLike[str], task: str, model: str, run_id: str) -> Path:
    return Path(root) / safe_name(task) / safe_name(model) / run_folder_name(run_id)


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], ReadReport]:
    report = ReadReport(path)
    rows: list[dict[str, Any]] = []
    if not file_exists(path):
        return rows, report
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror or exc})") from None
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


# The run folders this process holds the lock of (real path -> the holder line in their .lock).
# A POSIX record lock belongs to a process, not to a descriptor, so the kernel would grant it to
# a second RunStore of the same process; this registry refuses that one as another process is refused.
_HELD: dict[str, str] = {}
_HELD_GUARD = threading.Lock()

_JSON_KINDS = {list: "a JSON array", str: "a JSON string", int: "a number", float: "a number", bool: "true or false"}


def _json_kind(value: Any) -> str:
    return "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)


_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM for the milliseconds one batch's write takes, then act on them.

    An interrupt raised between a batch's samples and its timing would split the step; held, it
    is acted on (by the handler that was in place) once both are written. Only the main thread
    receives Python's signals, so elsewhere there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    for held in _HELD_SIGNALS:
        if signal.getsignal(held) is None:  # a handler not set from Python: left alone
            continue
        previous[held] = signal.signal(held, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        for number in dict.fromkeys(pending):
            handler = previous[signal.Signals(number)]
            if callable(handler):
                handler(number, None)  # KeyboardInterrupt, as it would have been
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


def _write_all(handle: Any, data: bytes, path: Path) -> None:
    """Write every byte through an unbuffered handle (a short write is retried; an error raises)."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:
            raise OSError(errno.EIO, f"nothing written to {path}")
        view = view[written:]


class RunStore:
    """Read and write one run folder. Writing needs ``lock()`` (or ``with store:``)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._lock_key = ""
        self.repairs: list[dict[str, Any]] = []  # torn tails this store cut (see torn_evidence)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(cls, path: str | os.PathLike[str], manifest: dict[str, Any] | None = None) -> RunStore:
        """Open (making it if needed) a run folder for writing; keeps an existing manifest's fields."""
        store = cls(path)
        store.lock()
        if manifest is not None:
            current = store.read_manifest() if store.has(MANIFEST) else {}
            current.update(manifest)
            store.write_manifest(current)
        return store

    def has(self, name: str) -> bool:
        """Whether the run file ``name`` is there (a link or a non-regular file there is an ``UnsafeRunFile``)."""
        return file_exists(self.path / name)

    def lock(self) -> None:
        """Become the folder's one writer (making the folder if needed), or raise ``RunLockedError`` at once.

        The lock is a POSIX record lock (``fcntl.lockf``) on ``.lock``, which names the holder. Such
        a lock belongs to the process that took it: a child it forks (vLLM's engine workers, grading
        workers) does not hold it, so a killed writer never leaves its folder locked by an orphan,
        and a run can hold the lock from planning to its last write while its engine starts. The
        kernel drops it when the process exits, however it ends. Its one trap: closing *any*
        descriptor of ``.lock`` in the holding process drops it, so nothing but this class opens
        that file. On taking it, a torn last line of samples.jsonl or batches.jsonl is cut
        (``_repair_tail``) and recorded in the manifest's ``repairs``.
        """
        if self._lock_fd is not None:
            return
        check_folder(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(f"cannot create run folder {self.path}: {exc.strerror or exc}") from None
        check_folder(self.path)
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            if key in _HELD:
                raise RunLockedError(self._locked(f"{_HELD[key]} (this process)"))
            try:
                fd = open_lock(self.path / LOCK)
            except OSError as exc:
                raise StoreWriteError(
                    f"run folder {self.path} cannot be written ({exc.strerror or exc}); "
                    "writing a run or its grades needs write access to its folder"
                ) from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.pread(fd, 500, 0).decode("utf-8", errors="replace").strip() or "another process"
                os.close(fd)  # this process holds no lock on the file, so closing drops nothing
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    raise RunLockedError(self._locked(holder)) from None
                raise StoreWriteError(f"run folder {self.path}: cannot lock {LOCK} ({exc.strerror or exc})") from None
            holder = f"pid {os.getpid()} on {os.uname().nodename} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, (holder + "\n").encode("utf-8"), 0)
            except OSError:
                pass  # the holder's name is a courtesy; the lock is what counts
            _HELD[key] = holder
            self._lock_fd, self._lock_key = fd, key
        try:
            self._repair_tails()
        except BaseException:
            self.unlock()
            raise

    def _locked(self, holder: str) -> str:
        return (
            f"run folder {self.path} is being written by {holder}; "
            "wait for it to finish or stop it (the lock is released when that process exits)"
        )

    def _repair_tails(self) -> None:
        repairs = [r for r in (self._repair_tail(self.path / SAMPLES), self._repair_tail(self.path / BATCHES)) if r]
        if repairs:
            self.repairs.extend(repairs)
            if self.has(MANIFEST):
                try:
                    manifest = self.read_manifest()
                except UnsafeRunFile:
                    raise
                except StoreError:
                    return  # the evidence stays in self.repairs; a broken manifest is reported where it is read
                manifest["repairs"] = [*manifest.get("repairs", []), *repairs]
                self.write_manifest(manifest)

    def unlock(self) -> None:
        if self._lock_fd is None:
            return
        with _HELD_GUARD:
            try:
                fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)
            except OSError:
                pass
            os.close(self._lock_fd)
            _HELD.pop(self._lock_key, None)
            self._lock_fd = None

    def __enter__(self) -> RunStore:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise StoreError(f"run folder {self.path}: writing needs the lock (use RunStore.create or `with store:`)")

    @contextmanager
    def _writing(self, name: str) -> Iterator[None]:
        """A failed write of run file ``name`` (a full disk, a read-only folder) as one ``StoreWriteError``."""
        self._require_lock()
        try:
            yield
        except StoreError:
            raise
        except OSError as exc:
            raise StoreWriteError(f"cannot write {self.path / name}: {exc.strerror or exc}") from None

    def _repair_tail(self, path: Path) -> dict[str, Any] | None:
        """Cut a partial last line left by a killed writer, so appends start on a fresh line.

        Returns the evidence of a cut (``torn_evidence``), None when nothing was cut.
        """
        if not file_exists(path):
            return None
        with self._writing(path.name):
            cut, last = _last_line(path)
            if cut is None:
                return None
            try:
                json.loads(last)
            except (json.JSONDecodeError, UnicodeDecodeError):
                with open_update(path) as handle:
                    handle.truncate(cut)
                return torn_evidence(path, cut, last)
            with open_append(path) as handle:  # a complete record missing only its newline
                handle.write(b"\n")
        return None

    # ------------------------------------------------------------------ manifest

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as a dict; ``StoreError`` naming the file when it is missing, unreadable or not a JSON object."""
        path = self.path / MANIFEST
        if not file_exists(path):
            raise StoreError(f"{self.path} is not a run folder: no {MANIFEST}")
        try:
            manifest = json.loads(read_bytes(path).decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path}: invalid JSON: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if not isinstance(manifest, dict):
            raise StoreError(
                f"{path}: expected a JSON object (the run's settings and stages), found {_json_kind(manifest)}"
            )
        stages = manifest.get("stages")
        if stages is not None and not isinstance(stages, dict):
            raise StoreError(f"{path}: 'stages' must be a JSON object, found {_json_kind(stages)}")
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomic replace, so a crash never leaves half a manifest."""
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode("utf-8")
        with self._writing(MANIFEST):
            write_replace(self.path / MANIFEST, lambda handle: handle.write(data))

    def update_manifest(self, **changes: Any) -> dict[str, Any]:
        manifest = self.read_manifest() if self.has(MANIFEST) else {}
        manifest.update(changes)
        self.write_manifest(manifest)
        return manifest

    def set_stage(self, stage: str, state: str, **details: Any) -> None:
        """Record a stage's state ('pending', 'running', 'done', 'interrupted', 'failed') with a timestamp."""
        self._stage(self.read_manifest() if self.has(MANIFEST) else {}, stage, state, details)

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
        data = "".join(json.dumps(problem.to_dict(), ensure_ascii=False) + "\n" for problem in problems).encode("utf-8")
        with self._writing(PROBLEMS):
            write_replace(self.path / PROBLEMS, lambda handle: handle.write(data))

    def read_problems(self) -> list[Problem]:
        if not self.has(PROBLEMS):
            raise StoreError(f"{self.path}: no {PROBLEMS}")
        rows, report = _read_jsonl(self.path / PROBLEMS)
        if report.truncated_tail or report.bad_lines:
            raise StoreError(report.summary())
        return [Problem.from_dict(r) for r in rows]

    # ------------------------------------------------------------------ samples

    def append_samples(self, completions: Iterable[Completion], timing: BatchTiming | None = None) -> int:
        """Append one batch as one step: its samples and its timing, or neither.

        The order: the samples' lines are written to samples.jsonl, then the timing's line to
        batches.jsonl, then both files are fsynced. Ctrl-C and SIGTERM are held for the step and
        acted on after it (``_signals_held``); a failure before both are durable (a full disk, a
        read-only file) cuts both files back to their sizes before the step and raises
        ``StoreWriteError``. So a stored sample has its batch's timing, a timing its samples, and
        the budget's measured-batches clock never counts half a batch. Only a hard kill (SIGKILL,
        power loss) between the two writes can leave one batch's samples without its timing (never
        a timing without samples); a line cut short then is the torn tail the next writer repairs.
        """
        self._require_lock()
        parts = [
            (SAMPLES, "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in completions).encode("utf-8")),
            (BATCHES, (json.dumps(timing.to_dict()) + "\n").encode("utf-8") if timing is not None else b""),
        ]
        count = parts[0][1].count(b"\n")
        opened: list[tuple[str, Any, int]] = []  # (name, handle, size before the step)
        with _signals_held():
            self._append_step(parts, opened)
        return count

    def _append_step(self, parts: list[tuple[str, bytes]], opened: list[tuple[str, Any, int]]) -> None:
        try:
            for name, data in parts:
                if data:
                    with self._writing(name):
                        handle = open_append(self.path / name)
                        opened.append((name, handle, os.fstat(handle.fileno()).st_size))
                        _write_all(handle, data, self.path / name)
            for name, handle, _ in opened:
                with self._writing(name):
                    os.fsync(handle.fileno())
        except BaseException:
            for _, handle, size in opened:
                try:
                    os.ftruncate(handle.fileno(), size)
                except OSError:
                    pass  # a partial line left is a torn tail, cut by the next writer
            raise
        finally:
            for _, handle, _ in opened:
                handle.close()

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
        with self._writing(GRADES):
            write_replace(self.path / GRADES, lambda handle: frame.to_parquet(handle, index=False))
        return self.path / GRADES

    def read_grades(self):  # -> pandas.DataFrame
        import pandas as pd

        path = self.path / GRADES
        if not self.has(GRADES):
            raise StoreError(f"{self.path}: no {GRADES}; run `m1eval grade {self.path}` first")
        try:
            with open_read(path) as handle:
                return pd.read_parquet(handle)
        except (OSError, ValueError) as exc:  # pyarrow's errors do not name a file read through a handle
            raise StoreError(f"{path}: cannot be read ({exc})") from None

    def has_grades(self) -> bool:
        return self.has(GRADES)


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
        if os.path.lexists(path / MANIFEST):  # a linked manifest is found here and refused where it is read
            runs.append(path)
        elif path.is_dir():
            runs.extend(sorted(p.parent for p in path.rglob(MANIFEST)))
        else:
            raise StoreError(f"{path}: no such run folder")
    if not runs:
        raise StoreError("no run folders (folders with a manifest.json) found in " + ", ".join(map(str, paths)))
    return runs
