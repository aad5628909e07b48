"""vLLM's engine processes live and stop with the run that started them.

vLLM runs its scheduler and model in a child process, the EngineCore (and, on CPU or with
tensor parallelism, worker processes under it). It starts the EngineCore with
``multiprocessing``: forked on CPU and on a GPU while CUDA is not initialised yet, spawned
in a Ray actor or after CUDA was initialised. Two things went wrong with that:

- a SIGKILL of ``m1eval run`` (``kill -9``, the OOM killer, a cluster's time limit) runs no
  clean-up in the run, and the EngineCore lived on with ppid 1, holding its memory (on a
  GPU the whole KV cache, so the resume could not start);
- Ctrl-C in a terminal sends SIGINT to the whole process group: the EngineCore shut itself
  down on it, and the run, which had not stopped yet (or, started in the background, ignored
  SIGINT), saw "EngineDeadError" and failed instead of stopping as interrupted.

``tie_engine_core()`` (called before every ``vllm.LLM`` is built) replaces vLLM's EngineCore
entry point, ``EngineCoreProc.run_engine_core`` (the target of its ``multiprocessing.Process``),
with ``run_engine_core`` below. A spawned child unpickles the target by reference, so it
imports this module and runs the wrapper too, whatever the start method. The wrapper

1. blocks SIGINT in the EngineCore (and so in the workers it starts, which inherit the
   mask): the run decides what an interrupt means and closes the engine itself (SIGTERM);
2. starts a daemon thread that watches the parent: once the parent is gone (the child's
   ppid changes) it sends the EngineCore SIGTERM (vLLM shuts its workers down on it) and,
   if it is still alive ``GRACE_S`` later, SIGKILL. vLLM's workers already watch the
   EngineCore (its "death pipe").

vLLM's worker processes (``WorkerProc.worker_main``) get the same wrapper: it is what an
engine process imports first (the target of a spawned process is unpickled before its
arguments, which import vLLM), so importing this module also gives vLLM's logger the level
the run chose (``$VLLM_LOGGING_LEVEL``, inherited) before vLLM logs its import-time warnings.

Nothing else of vLLM is changed; where an entry point is not found (another vLLM), the
engine starts as it always did.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

POLL_S = 0.5  # how often the watcher looks at the parent
GRACE_S = 5.0  # between SIGTERM (vLLM's orderly shutdown) and SIGKILL of an orphaned EngineCore
LOG_LEVEL_ENV = "VLLM_LOGGING_LEVEL"
QUIET_LEVEL = "ERROR"  # m1eval's default for vLLM (m1eval.engines.vllm.set_log_level)
# vLLM's entry points (module, class, static method) and what tie_engine_core put in their place
ENTRY_POINTS = {
    "run_engine_core": ("vllm.v1.engine.core", "EngineCoreProc"),
    "worker_main": ("vllm.v1.executor.multiproc_executor", "WorkerProc"),
}
_ORIGINALS: dict[str, Callable[..., Any]] = {}


def quiet() -> bool:
    """Whether vLLM's output is to be kept to errors (what ``set_log_level`` without verbose chose)."""
    return os.environ.get(LOG_LEVEL_ENV, "").strip().upper() in (QUIET_LEVEL, "CRITICAL")


if quiet():  # an engine process: before vLLM is imported (see the module docstring)
    logging.getLogger("vllm").setLevel(logging.ERROR)


def watch_parent(parent_pid: int, *, poll_s: float = POLL_S, grace_s: float = GRACE_S) -> threading.Thread:
    """A daemon thread that ends this process (SIGTERM, then SIGKILL) once ``parent_pid`` is no longer its parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="m1eval-parent-watch", daemon=True)
    thread.start()
    return thread


def parent_pid() -> int:
    """The pid of the process that started this one (recorded by multiprocessing, so a parent
    that died before this line ran is still told apart from the process that adopted us)."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getppid()


def follow_parent() -> None:
    """What an engine child does first: leave interrupts to the run, and die with it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    watch_parent(parent_pid())


def _original(name: str) -> Callable[..., Any]:
    """vLLM's own entry point ``name``: kept by ``tie_engine_core`` in this process (or the forked
    parent), else (a spawned process, which imported vLLM afresh) still on vLLM's class."""
    original = _ORIGINALS.get(name)
    if original is None:
        import importlib

        module, cls = ENTRY_POINTS[name]
        original = getattr(getattr(importlib.import_module(module), cls), name)
    if getattr(original, "__module__", None) == __name__:  # pragma: no cover - tie_engine_core prevents it
        raise RuntimeError(f"m1eval: vLLM's {name} is lost")
    return original


def run_engine_core(*args: Any, **kwargs: Any) -> Any:
    """vLLM's EngineCore entry point, in a process tied to its parent (``follow_parent``)."""
    follow_parent()
    tie_engine_core()  # the workers it starts (spawned, they do not inherit the class) are wrapped too
    return _original("run_engine_core")(*args, **kwargs)


def worker_main(*args: Any, **kwargs: Any) -> Any:
    """vLLM's worker entry point, in a process tied to its EngineCore (``follow_parent``)."""
    follow_parent()
    return _original("worker_main")(*args, **kwargs)


_WRAPPERS: dict[str, Callable[..., Any]] = {"run_engine_core": run_engine_core, "worker_main": worker_main}


@contextlib.contextmanager
def noting_interrupts() -> Iterator[list[int]]:
    """The SIGINT/SIGTERM signals this process gets while the block runs (each still goes to the
    handler that was set: KeyboardInterrupt by default, nothing where it was ignored).

    An engine that dies while a run is interrupted (an engine process not tied by
    ``tie_engine_core`` gets the terminal's SIGINT too) raises its own error ("EngineDeadError")
    instead; with the signal noted here the engine reports an interrupt, not a failure. Only
    the main thread can set handlers; elsewhere nothing is noted.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous: dict[int, Any] = {}

    def note(signum: int, frame: Any) -> None:
        seen.append(signum)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        elif handler != signal.SIG_IGN:  # the default: SIGINT raises, SIGTERM ends the process
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, note)
    try:
        yield seen
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def tie_engine_core() -> bool:
    """Make every vLLM engine process started from now on in this process follow it (idempotent).

    Returns False where this vLLM has no EngineCore entry point to wrap.
    """
    import importlib

    tied = {}
    for name, (module_name, cls_name) in ENTRY_POINTS.items():
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError):
            tied[name] = False
            continue
        function = getattr(cls.__dict__.get(name), "__func__", None)
        if function is _WRAPPERS[name]:
            tied[name] = True
            continue
        if not callable(function):
            tied[name] = False
            continue
        _ORIGINALS[name] = function
        setattr(cls, name, staticmethod(_WRAPPERS[name]))
        tied[name] = True
    return tied["run_engine_core"]
