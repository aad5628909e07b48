"""Hard deadlines for the public checking functions, outside the ``Grader``.

``is_equivalent``, ``check_answer`` and ``extract_answer`` read untrusted text. A regular
expression that backtracks, or sympy stuck in C code, cannot be stopped from inside the
process that runs it, so these calls run in guarded worker processes (the ``Grader``'s
own ``WorkerPool`` with a single child, started on first use and reused): a call past its
deadline kills that child and raises ``GradingTimeout``. A library caller gets a verdict
or a timeout, never a hang. Extraction and the cheap tiers run in a *light* worker that
starts in milliseconds; only a comparison that needs algebra goes to the *heavy* worker,
whose forkserver has sympy loaded (seconds to start, once).

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
_pools: dict[str, Any] = {}
_pool_pid: int | None = None


class GradingTimeout(TimeoutError):
    """A checking call passed its hard deadline; its worker was killed."""


class GradingError(RuntimeError):
    """A checking call failed in its worker (memory limit, unexpected error)."""


def _inline() -> bool:
    return IN_WORKER or mp.current_process().daemon


def _get_pool(kind: str):  # noqa: ANN202
    """``light``: a forked copy of this process (milliseconds to start, no sympy) when it
    has one thread, else the forkserver; ``heavy``: the forkserver with sympy preloaded."""
    global _pool_pid
    from m1eval.grading.pool import WorkerPool

    if _pool_pid != os.getpid():
        _pools.clear()
        _pool_pid = os.getpid()
    if kind not in _pools:
        fork_ok = kind == "light" and threading.active_count() == 1 and "fork" in mp.get_all_start_methods()
        _pools[kind] = WorkerPool(1, method="fork" if fork_ok else None)
    return _pools[kind]


def _run(pool_kind: str, kind: str, payload: Any, seconds: float) -> Any:
    from m1eval.grading.pool import OK, TIMEOUT

    pool = _get_pool(pool_kind)
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


def _seconds(timeout: float | None) -> float:
    seconds = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if not seconds > 0:
        raise ValueError(f"timeout must be > 0 seconds (got {timeout})")
    return seconds


def call(kind: str, payload: Any, timeout: float | None = None, heavy: bool = True) -> Any:
    """Run one grading task (``m1eval.grading.jobs.run_task``) under a hard deadline."""
    from m1eval.grading import jobs as task_lib

    seconds = _seconds(timeout)
    if _inline():
        return task_lib.run_task(kind, payload)
    with _lock:
        return _run("heavy" if heavy else "light", kind, payload, seconds)


def check(payload: tuple, timeout: float | None = None) -> Any:
    """A ``check`` task: the cheap tiers in the light worker, sympy (if needed) in the heavy one,
    both within one deadline."""
    import time

    from m1eval.grading import jobs as task_lib

    seconds = _seconds(timeout)
    if _inline():
        return task_lib.run_task("check", payload)
    start = time.monotonic()
    with _lock:
        result = _run("light", "check-light", payload, seconds)
        if result.status != "pending":
            return result
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            raise GradingTimeout(f"check: no result within the {seconds:g} s hard deadline")
        return _run("heavy", "check", payload, left)


def shutdown() -> None:
    """Stop the guarded workers (they are started again on the next call)."""
    global _pool_pid
    pools, pid = dict(_pools), _pool_pid
    _pools.clear()
    _pool_pid = None
    if pid == os.getpid():
        for pool in pools.values():
            with contextlib.suppress(Exception):  # best effort at exit
                pool.close(force=True)


atexit.register(shutdown)
