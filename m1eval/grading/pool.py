"""Worker processes with a hard per-item time limit and a memory limit.

sympy can loop for minutes or allocate gigabytes on a pathological answer, and a
thread cannot be stopped. So symbolic work runs in child processes: each has an
address-space limit (``RLIMIT_AS``) and each item a deadline; a child that misses its
deadline is killed and replaced, the item is reported as a timeout, and the run goes on.
Children are forked from a forkserver that has sympy and latex2sympy preloaded, so a
replacement starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

TIMEOUT = "timeout"
ERROR = "error"
OK = "ok"


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(memory_mb: int) -> None:
    """Allow ``memory_mb`` on top of what the (preloaded) child already maps."""
    if memory_mb <= 0:
        return
    limit = _vm_size_bytes() + memory_mb * 1024 * 1024
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass


def _worker_main(conn: Connection, memory_mb: int) -> None:
    import signal

    from m1eval.grading import guard
    from m1eval.grading import jobs as task_lib

    # Ctrl-C reaches the whole process group; the parent decides what to keep and kills
    # its children, so a worker must not die printing a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    guard.IN_WORKER = True
    _limit_memory(memory_mb)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, kind, payload = message
        try:
            result: tuple[str, Any] = (OK, task_lib.run_task(kind, payload))
        except MemoryError:
            result = (ERROR, "memory limit")
        except Exception as exc:  # noqa: BLE001 - report, never die on one item
            result = (ERROR, f"{type(exc).__name__}: {exc}"[:200])
        try:
            conn.send((index, result))
        except (OSError, ValueError):
            return


class _Worker:
    def __init__(self, ctx: Any, memory_mb: int) -> None:
        parent, child = ctx.Pipe()
        self.conn = parent
        self.process = ctx.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(timeout=5)
        except (OSError, ValueError, AttributeError):
            pass
        self.conn.close()


class WorkerPool:
    """Run ``(kind, payload)`` items on N children; each result is (status, value)."""

    def __init__(self, workers: int, timeout: float = 5.0, memory_mb: int = 1024, method: str | None = None) -> None:
        """``method`` None: a forkserver with sympy preloaded (``preload``); "fork": a copy of
        this process, which starts in milliseconds but imports sympy only if it needs it."""
        self.size = max(1, workers)
        self.timeout = timeout
        self.memory_mb = memory_mb
        if method is None:
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self._ctx = mp.get_context(method)
        if method == "forkserver":
            self._ctx.set_forkserver_preload(["m1eval.grading.preload"])
        self._workers: list[_Worker] = []
        self.restarts = 0

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.memory_mb)

    def run(
        self,
        items: Sequence[tuple[str, Any]],
        on_result: Callable[[int, tuple[str, Any]], None] | None = None,
    ) -> list[tuple[str, Any]]:
        results: list[tuple[str, Any] | None] = [None] * len(items)
        if not items:
            return []
        while len(self._workers) < min(self.size, len(items)):
            self._workers.append(self._spawn())
        queue = list(range(len(items)))
        queue.reverse()
        pending = 0

        def finish(index: int, result: tuple[str, Any]) -> None:
            results[index] = result
            if on_result is not None:
                on_result(index, result)

        def dispatch(worker: _Worker) -> bool:
            nonlocal pending
            if not queue:
                return False
            index = queue.pop()
            kind, payload = items[index]
            try:
                worker.conn.send((index, kind, payload))
            except (OSError, ValueError):
                queue.append(index)
                return False
            worker.task = index
            worker.deadline = time.monotonic() + self.timeout
            pending += 1
            return True

        for worker in self._workers:
            dispatch(worker)
        while pending:
            busy = [w for w in self._workers if w.task is not None]
            now = time.monotonic()
            wait_for = max(0.0, min(w.deadline for w in busy) - now) if busy else 0.0
            ready = wait([w.conn for w in busy], timeout=wait_for + 0.01)
            ready_set = set(ready)
            for slot, worker in enumerate(list(self._workers)):
                task = worker.task
                if task is None:
                    continue
                if worker.conn in ready_set:
                    try:
                        index, result = worker.conn.recv()
                    except (EOFError, OSError):
                        index, result = worker.task, (ERROR, "worker died (memory limit?)")
                        self._replace(slot, worker)
                        worker = self._workers[slot]
                    else:
                        worker.task = None
                        if time.monotonic() > worker.deadline:
                            result = (TIMEOUT, None)  # late is late: the deadline is the contract
                    finish(index, result)
                    pending -= 1
                    self._workers[slot].task = None
                    dispatch(self._workers[slot])
                elif time.monotonic() > worker.deadline:
                    self._replace(slot, worker)
                    finish(task, (TIMEOUT, None))
                    pending -= 1
                    dispatch(self._workers[slot])
        return [r if r is not None else (ERROR, "lost") for r in results]

    def _replace(self, slot: int, worker: _Worker) -> None:
        worker.kill()
        self.restarts += 1
        self._workers[slot] = self._spawn()

    def close(self, force: bool = False) -> None:
        """Stop the children: politely (finish, then exit), or at once with ``force``."""
        if force:
            for worker in self._workers:
                worker.kill()
            self._workers = []
            return
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        for worker in self._workers:
            worker.process.join(timeout=1)
            if worker.process.is_alive():
                worker.kill()
            else:
                worker.conn.close()
        self._workers = []
