"""Hard deadlines for the public checking functions, outside the ``Grader``.

``is_equivalent``, ``check_answer`` and ``extract_answer`` read untrusted text. A regular
expression that backtracks, or sympy stuck in C code, cannot be stopped from inside the
process that runs it, so these calls run in one guarded worker process (the ``Grader``'s
own ``WorkerPool`` with a single child, started on first use and reused): a call past its
deadline kills that child and raises ``GradingTimeout``. A library caller gets a verdict
or a timeout, never a hang.

Inside a grading worker (or any daemonic process, which may not start children) the work
runs in-process: there the parent's deadline already covers it.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import threading
from typing import Any

DEFAULT_TIMEOUT = 5.0
IN_WORKER = False  # set in grading worker processes

_lock = threading.Lock()
_pool: Any = None
_pool_pid: int | None = None


class GradingTimeout(TimeoutError):
    """A checking call passed its hard deadline; its worker was killed."""


class GradingError(RuntimeError):
    """A checking call failed in its worker (memory limit, unexpected error)."""


def _inline() -> bool:
    return IN_WORKER or mp.current_process().daemon


def _get_pool():  # noqa: ANN202
    global _pool, _pool_pid
    from m1eval.grading.pool import WorkerPool

    if _pool is None or _pool_pid != os.getpid():
        _pool = WorkerPool(1)
        _pool_pid = os.getpid()
    return _pool


def call(kind: str, payload: Any, timeout: float | None = None) -> Any:
    """Run one grading task (``m1eval.grading.tasks.run_task``) under a hard deadline."""
    from m1eval.grading import tasks as task_lib
    from m1eval.grading.pool import OK, TIMEOUT

    seconds = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if not seconds > 0:
        raise ValueError(f"timeout must be > 0 seconds (got {timeout})")
    if _inline():
        return task_lib.run_task(kind, payload)
    with _lock:
        pool = _get_pool()
        pool.timeout = seconds
        try:
            ((status, value),) = pool.run([(kind, payload)])
        except BaseException:
            shutdown()  # an interrupt mid-call: the child may be busy, start clean next time
            raise
    if status == OK:
        return value
    if status == TIMEOUT:
        raise GradingTimeout(f"{kind}: no result within the {seconds:g} s hard deadline (worker killed)")
    raise GradingError(f"{kind}: {value}")


def shutdown() -> None:
    """Stop the guarded worker (it is started again on the next call)."""
    global _pool, _pool_pid
    pool, pid = _pool, _pool_pid
    _pool, _pool_pid = None, None
    if pool is not None and pid == os.getpid():
        with contextlib.suppress(Exception):  # best effort at exit
            pool.close(force=True)


atexit.register(shutdown)
