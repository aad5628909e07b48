"""One engine as N Ray actors: ``m1eval run --replicas N`` across the GPUs and nodes of a Ray cluster.

Why Ray: it is what this field already runs (vLLM, SkyThought, lighteval), it places
actors on GPUs by its own resource accounting, joins a multi-node cluster with two shell
commands, and reports a dead actor as an exception instead of a hang. m1eval does not
schedule anything itself beyond a queue.

How: each actor (``_Replica``) builds one engine of the chosen kind (``vllm``, ``hf``,
``m1``) and streams the ``BatchResult``s of a chunk back as the engine yields them. The
driver (``ReplicaPool``) hands chunks of pending requests to free actors and yields every
batch to the runner the moment it arrives, so the runner stores it exactly as it stores a
single-process batch. Per-sample seeds make a sample's text independent of which actor
drew it. Faults: when an actor dies (killed, OOM-killed, node lost) the samples of its
chunk that had not come back are put back on the queue for another actor and, within a
budget, a replacement actor is started; a sample that came back is never requested again,
so each one is stored exactly once. Engine errors raised inside an actor (a bad option,
CUDA out of memory) are not faults of the machine: they stop the run as they would in a
single process. Ray is imported only when a pool is built (``pip install "m1eval[ray]"``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from m1eval.engines import ENGINES, engine_class
from m1eval.engines.base import BatchResult, EngineBase, EngineError, GenerationRequest, NoticeHook
from m1eval.engines.options import redacted
from m1eval.records import SamplingConfig

REPLICA_ENGINES = ("vllm", "hf", "m1")  # openai spreads over --endpoint servers instead
CHUNKS_PER_REPLICA = 4  # default chunking: enough chunks that a slow or dead replica leaves little idle
CONNECT_TIMEOUT_S = 5.0  # a cluster address that does not answer within this is an error
POLL_S = 0.5  # ray.wait timeout: how often the driver notices Ctrl-C while actors work


class ReplicaError(EngineError):
    """Ray or its actors cannot do what was asked; the message says what to change."""


@dataclass(frozen=True)
class ReplicaSettings:
    """How many replicas, where, and with what resources (``m1eval run --replicas ...``)."""

    replicas: int
    ray_address: str | None = None  # None: start a local Ray instance with this machine's resources
    gpus_per_replica: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_replica: float = 1.0
    num_cpus: int | None = None  # local instance only: CPUs Ray may use (None: all of the machine's)
    replacements: int | None = None  # dead actors replaced at most this often (None: `replicas` times)
    start_timeout_s: float = 1800.0  # model loading on every replica must finish within this

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ReplicaError(f"replicas must be at least 1, got {self.replicas}")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise ReplicaError(f"gpus_per_replica must be >= 0, got {self.gpus_per_replica}")
        if self.cpus_per_replica <= 0:
            raise ReplicaError(f"cpus_per_replica must be > 0, got {self.cpus_per_replica}")


@dataclass
class PoolStats:
    """What happened in a pool: the fault test and the benchmark read these counts."""

    chunks_submitted: int = 0
    chunks_finished: int = 0
    batches: int = 0
    samples: int = 0
    actors_started: int = 0
    actors_died: int = 0
    chunks_requeued: int = 0
    samples_requeued: int = 0  # samples whose actor died before they came back (drawn again elsewhere)
    duplicates_dropped: int = 0  # samples that came back twice (never expected; kept out of the store)
    per_replica: dict[int, int] = field(default_factory=dict)  # replica index -> samples it delivered
    deaths: list[str] = field(default_factory=list)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ReplicaError(
            f'replicas need Ray ({exc}); install it with `pip install "m1eval[ray]"` '
            "(or `pip install ray`) on the driver and on every node"
        ) from exc
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) to probe for a cluster address; None for ``auto``/``local`` (Ray resolves those)."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    default_port = 6379
    if text.startswith("ray://"):
        text, default_port = text[len("ray://") :], 10001
    elif "://" in text:
        raise ReplicaError(f"Ray address {address!r}: expected HOST[:PORT], ray://HOST[:PORT] or auto")
    text = text.split("/", 1)[0]
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    host = host.strip("[]")
    if not host:
        raise ReplicaError(f"Ray address {address!r}: no host")
    try:
        port_number = int(port) if port else default_port
    except ValueError:
        raise ReplicaError(f"Ray address {address!r}: port {port!r} is not a number") from None
    if not 0 < port_number < 65536:
        raise ReplicaError(f"Ray address {address!r}: port {port_number} out of range")
    return host, port_number


def check_ray_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast (seconds, not Ray's minutes of retries) when nothing listens at ``address``."""
    target = _host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ReplicaError(
            f"Ray address {address!r}: cannot reach a Ray head at {host}:{port} ({exc.strerror or exc}); "
            "start one with `ray start --head` on that node, or give no address to use a local Ray"
        ) from None


def default_chunk_samples(pending: int, replicas: int, ceiling: int) -> int:
    """About ``CHUNKS_PER_REPLICA`` chunks per replica, never more samples than ``ceiling`` per chunk."""
    return max(1, min(ceiling, math.ceil(pending / (CHUNKS_PER_REPLICA * replicas))))


def split_requests(requests: Sequence[GenerationRequest], samples_per_chunk: int) -> list[list[GenerationRequest]]:
    """Whole problems per chunk, about ``samples_per_chunk`` samples each (at least one problem)."""
    chunks: list[list[GenerationRequest]] = []
    for request in requests:
        if not chunks or (_samples(chunks[-1]) + len(request.sample_indices) > samples_per_chunk):
            chunks.append([])
        chunks[-1].append(request)
    return chunks


def _remaining(chunk: Sequence[GenerationRequest], received: set[tuple[str, int]]) -> list[GenerationRequest]:
    """The requests of ``chunk`` cut to the samples that have not come back, with their own seeds."""
    out = []
    for request in chunk:
        kept = [
            (i, s) for i, s in zip(request.sample_indices, request.seeds) if (request.problem_id, i) not in received
        ]
        if kept:
            out.append(GenerationRequest(
                problem_id=request.problem_id, prompt=request.prompt, sample_indices=[i for i, _ in kept],
                seeds=[s for _, s in kept], prompt_token_ids=request.prompt_token_ids,
            ))  # fmt: skip
    return out


def _samples(chunk: Sequence[GenerationRequest]) -> int:
    return sum(len(r.sample_indices) for r in chunk)


class _Replica:
    """The body of one Ray actor: one engine, kept for the whole run.

    Construction errors are kept and reported by ``ready()`` so the driver can say
    "replica 1 could not load the model: ..." instead of a Ray actor-death trace.
    """

    def __init__(self, engine: str, model: str, options: dict[str, Any]) -> None:
        self.engine: Any = None
        self.error: str | None = None
        self.error_type = ""
        try:
            self.engine = engine_class(engine)(model, options=dict(options))
        except Exception as exc:  # noqa: BLE001 - reported to the driver by ready()
            self.error = f"{type(exc).__name__}: {exc}"
            self.error_type = type(exc).__name__

    def ready(self) -> dict[str, Any]:
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(), "error": self.error,
                                "error_type": self.error_type}  # fmt: skip
        with contextlib.suppress(Exception):  # informational only
            import ray

            info["node"] = ray.get_runtime_context().get_node_id()
            info["gpus"] = [str(g) for g in ray.get_gpu_ids()]
        if "torch" in sys.modules:  # CPU replicas: Ray sets OMP_NUM_THREADS from --cpus-per-replica
            info["torch_threads"] = sys.modules["torch"].get_num_threads()
        options = self.engine.options if self.engine is not None else None
        if isinstance(options, dict):
            info["options"] = redacted(options, type(self.engine).option_specs)
        return info

    def generate(self, requests: list[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        if self.engine is None:
            raise EngineError(self.error or "engine not built")
        yield from self.engine.generate(requests, sampling)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


@dataclass
class _Slot:
    """One actor as the driver sees it."""

    index: int
    actor: Any
    info: dict[str, Any] = field(default_factory=dict)
    alive: bool = True


@dataclass
class _Work:
    slot: _Slot
    chunk: list[GenerationRequest]
    received: set[tuple[str, int]] = field(default_factory=set)


class ReplicaPool(EngineBase):
    """N engines of one kind as Ray actors, behind the engine contract.

    The runner hands ``generate_pending`` every pending request of the run; the pool cuts
    them into chunks (``chunk_size`` samples, or about ``CHUNKS_PER_REPLICA`` per replica up
    to ``max_chunk``) and yields each batch as it arrives, batches of different chunks
    interleaved in the order the actors finish them. The pool holds no tokenizer (the
    runner loads its own for the prompts). ``on_status`` gets a changing one-line state
    while the replicas start (None when that is over); ``on_notice`` gets lost replicas.
    """

    def __init__(self, engine: str, model: str, options: dict[str, Any], settings: ReplicaSettings, *,
                 chunk_size: int | None = None, max_chunk: int = 512, on_notice: NoticeHook | None = None,
                 on_status: Callable[[str | None], None] | None = None) -> None:  # fmt: skip
        if engine not in ENGINES:
            raise ReplicaError(f"unknown engine {engine!r}; choose one of {', '.join(sorted(ENGINES))}")
        if engine not in REPLICA_ENGINES:
            raise ReplicaError(f"replicas work with the {', '.join(REPLICA_ENGINES)} engines, not {engine!r} "
                               "(spread an openai run over several endpoints instead)")  # fmt: skip
        self.name = engine
        self.settings = settings
        self.on_notice = on_notice
        self._status = on_status or (lambda _text: None)
        self.stats = PoolStats()
        self.chunk_size = chunk_size
        self.max_chunk = max_chunk
        self._model = model
        self._engine_options = dict(options)
        self._slots: list[_Slot] = []
        self._inflight: dict[Any, _Work] = {}
        self._starting: dict[Any, _Slot] = {}
        self._replacements_left = settings.replicas if settings.replacements is None else settings.replacements
        self._delivered: set[tuple[str, int]] = set()
        self._first_ready = 0.0
        self.ray = import_ray()
        self._started_ray = False
        self._connect()
        try:
            self._gpus = self._resources()
            self._actor_class = self.ray.remote(_Replica)
            for _ in range(settings.replicas):
                self._start_actor()
            self._await_start()
        except BaseException:
            self.close()
            raise
        first = next((s.info for s in self._slots if s.alive and s.info), {})
        self.options: dict[str, Any] = {
            **first.get("options", {}), "replicas": settings.replicas, "gpus_per_replica": self._gpus,
            "cpus_per_replica": settings.cpus_per_replica, "ray_address": settings.ray_address or "local",
        }  # fmt: skip

    # ------------------------------------------------------------------ start-up

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():  # a caller (notebook, benchmark) already connected; leave it to them
            return
        address = self.settings.ray_address
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address:
                check_ray_address(address)
                ray.init(address=address, **kwargs)
            else:
                ray.init(address="local", num_cpus=self.settings.num_cpus, **kwargs)
        except ReplicaError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray raises many types for one cause: no cluster
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            hint = ""
            if address and os.environ.get("RAY_AUTH_MODE", "") != "token":
                hint = (
                    "; if the cluster uses token authentication (`ray start --head` turns it on when the head "
                    "has ~/.ray/auth_token), export RAY_AUTH_MODE=token and copy that file here"
                )
            raise ReplicaError(f"cannot connect to {where}: {type(exc).__name__}: {_first_line(exc)}{hint}") from None
        self._started_ray = True

    def _resources(self) -> float:
        """GPUs per replica, and a clear error when the cluster cannot hold the replicas at all."""
        total = self.ray.cluster_resources()
        gpus = self.settings.gpus_per_replica
        if gpus is None:
            gpus = 1.0 if total.get("GPU", 0) >= 1 else 0.0
        n = self.settings.replicas
        for name, each in (("GPU", gpus), ("CPU", self.settings.cpus_per_replica)):
            have = total.get(name, 0.0)
            if each > 0 and n * each > have:
                setting = "gpus_per_replica" if name == "GPU" else "cpus_per_replica"
                raise ReplicaError(
                    f"{n} replicas x {each:g} {name}s ({setting}) need {n * each:g} {name}s but the Ray cluster has "
                    f"{have:g}; use fewer replicas, a smaller {setting}, or add nodes"
                )
        return float(gpus)

    def _start_actor(self) -> None:
        index = self.stats.actors_started
        self.stats.actors_started += 1
        actor = self._actor_class.options(
            num_cpus=self.settings.cpus_per_replica,
            num_gpus=self._gpus,
            max_restarts=0,
            max_task_retries=0,
            name=None,
        ).remote(self.name, self._model, self._engine_options)
        slot = _Slot(index, actor)
        self._slots.append(slot)
        self._starting[actor.ready.remote()] = slot

    def _await_start(self) -> None:
        """Wait for the replicas to load the model: all of them, or once one is ready, as long again (>= 30 s).

        Replicas still loading after that (a busy node, a cluster short of GPUs for
        now) join the run when they are ready instead of holding it up.
        """
        t0 = time.monotonic()
        deadline = t0 + self.settings.start_timeout_s
        self._status(f"starting {self.settings.replicas} {self.name} replicas on Ray")
        try:
            while self._starting:
                now = time.monotonic()
                ready_slots = sum(1 for s in self._slots if s.alive and s.info)
                if ready_slots and now > self._first_ready + max(30.0, self._first_ready - t0):
                    self._notice(f"{len(self._starting)} replica(s) still starting; "
                                 f"generating on {ready_slots} meanwhile")  # fmt: skip
                    return
                if now > deadline:
                    raise ReplicaError(
                        f"{len(self._starting)} of {self.settings.replicas} replicas did not start within "
                        f"{self.settings.start_timeout_s:g} s (the cluster may lack the resources they ask for)"
                    )
                ready, _ = self.ray.wait(list(self._starting), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    self._started(ref, at_start=True)
                    if not ready_slots:
                        self._first_ready = time.monotonic()
                done = sum(1 for s in self._slots if s.alive and s.info)
                self._status(f"starting {self.settings.replicas} {self.name} replicas on Ray: {done} ready")
        finally:
            self._status(None)

    def _notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    def _started(self, ref: Any, *, at_start: bool) -> None:
        """A replica answered ``ready()`` (or died trying)."""
        slot = self._starting.pop(ref)
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            slot.alive = False
            self._note_death(slot, f"died while starting: {_first_line(exc)}")
            if at_start:
                raise ReplicaError(f"replica {slot.index} died while loading the model: {_first_line(exc)}") from None
            return
        if info.get("error"):
            slot.alive = False
            self._kill(slot)
            # the same engine and options fail the same way on every replica: stop now
            raise EngineError(f"replica {slot.index} could not build the {self.name} engine: {info['error']}")
        slot.info = info

    # ------------------------------------------------------------------ generation

    def generate_pending(
        self, requests: Iterable[GenerationRequest], sampling: SamplingConfig, samples_per_chunk: int
    ) -> Iterator[BatchResult]:
        """The run's pending requests all at once: the pool chunks and spreads them itself
        (``chunk_size`` given to the pool, else its own default, not ``samples_per_chunk``)."""
        return self.generate(list(requests), sampling)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """Every requested sample exactly once, drawn on the replicas in chunks of whole problems."""
        pending = sum(len(r.sample_indices) for r in requests)
        size = self.chunk_size or default_chunk_samples(pending, self.settings.replicas, self.max_chunk)
        return self.generate_chunks(split_requests(requests, size), sampling)

    def generate_chunks(self, chunks: Sequence[Sequence[GenerationRequest]], sampling: SamplingConfig,
                        ) -> Iterator[BatchResult]:  # fmt: skip
        """Yield every batch of every chunk as it arrives, from whichever replica drew it."""
        ray = self.ray
        queue: deque[list[GenerationRequest]] = deque(list(c) for c in chunks if _samples(c))
        idle = [s for s in self._slots if s.alive and s.info]
        waiting_since = time.monotonic()
        while queue or self._inflight:
            while queue and idle:
                self._submit(idle.pop(0), queue.popleft(), sampling)
            if self._inflight or idle:
                waiting_since = time.monotonic()
            elif not self._starting or time.monotonic() - waiting_since > self.settings.start_timeout_s:
                raise ReplicaError(
                    f"no replica left to run on ({'; '.join(self.stats.deaths[-3:]) or 'none started'}); "
                    f"{sum(_samples(c) for c in queue)} samples were not drawn"
                )
            ready, _ = ray.wait([*self._inflight, *self._starting], num_returns=1, timeout=POLL_S)
            for ref in ready:
                if ref in self._starting:
                    slot = self._starting[ref]
                    self._started(ref, at_start=False)
                    if slot.alive:
                        idle.append(slot)
                    continue
                work = self._inflight[ref]
                try:
                    result = ray.get(next(ref))
                except StopIteration:
                    del self._inflight[ref]
                    self.stats.chunks_finished += 1
                    missing = _remaining(work.chunk, work.received)
                    if missing:
                        raise EngineError(f"replica {work.slot.index}: the {self.name} engine returned no sample for "
                                          f"{_samples(missing)} requested samples") from None  # fmt: skip
                    idle.append(work.slot)
                    continue
                except ray.exceptions.RayActorError as exc:
                    del self._inflight[ref]
                    self._lost(work, exc, queue)
                    continue
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, EngineError):
                        raise cause from None
                    raise EngineError(f"replica {work.slot.index} failed: {_first_line(cause or exc)}") from None
                fresh = self._accept(work, result)
                if fresh is not None:
                    yield fresh

    def _submit(self, slot: _Slot, chunk: list[GenerationRequest], sampling: SamplingConfig) -> None:
        ref = slot.actor.generate.options(num_returns="streaming").remote(chunk, sampling)
        self._inflight[ref] = _Work(slot, chunk)
        self.stats.chunks_submitted += 1

    def _accept(self, work: _Work, result: BatchResult) -> BatchResult | None:
        """Record what came back; a sample already delivered is dropped so the store never sees it twice."""
        keep = []
        for completion in result.completions:
            key = (completion.problem_id, completion.sample_index)
            work.received.add(key)
            if key in self._delivered:
                self.stats.duplicates_dropped += 1
                continue
            self._delivered.add(key)
            keep.append(completion)
        if not keep:
            return None
        self.stats.batches += 1
        self.stats.samples += len(keep)
        self.stats.per_replica[work.slot.index] = self.stats.per_replica.get(work.slot.index, 0) + len(keep)
        result.completions = keep
        return result

    def _lost(self, work: _Work, exc: Exception, queue: deque[list[GenerationRequest]]) -> None:
        """An actor died mid-chunk: requeue what it had not sent back; replace it while the budget lasts."""
        slot = work.slot
        slot.alive = False
        missing = _remaining(work.chunk, work.received)
        self._note_death(slot, _first_line(exc))
        if missing:
            queue.appendleft(missing)
            self.stats.chunks_requeued += 1
            self.stats.samples_requeued += _samples(missing)
        note = f"replica {slot.index} died ({_first_line(exc)}); {_samples(missing)} samples go back to the queue"
        if self._replacements_left > 0:
            self._replacements_left -= 1
            self._start_actor()
            note += f"; starting replica {self.stats.actors_started - 1} in its place"
        self._notice(note)

    def _note_death(self, slot: _Slot, why: str) -> None:
        self.stats.actors_died += 1
        self.stats.deaths.append(f"replica {slot.index} (pid {slot.info.get('pid', '?')}): {why}")

    # ------------------------------------------------------------------ inspection and shutdown

    def replica_info(self) -> list[dict[str, Any]]:
        """pid, host, node and GPUs of every replica that has started, with whether it is alive."""
        return [{"index": s.index, "alive": s.alive, **s.info} for s in self._slots if s.info]

    def busy(self) -> list[dict[str, Any]]:
        """The chunks in flight now: replica index, pid, samples asked and samples back (safe from any thread)."""
        for _ in range(10):
            try:
                works = list(self._inflight.values())
                break
            except RuntimeError:  # the driver thread changed the dict meanwhile
                continue
        else:
            return []
        return [{"index": w.slot.index, "pid": w.slot.info.get("pid"), "samples": _samples(w.chunk),
                 "received": len(w.received)} for w in works]  # fmt: skip

    def _kill(self, slot: _Slot) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.ray.kill(slot.actor, no_restart=True)

    def close(self, grace_s: float = 30.0) -> None:
        """Stop every actor (engines closed when they answer within ``grace_s``), then a Ray we started."""
        ray = self.ray
        if not ray.is_initialized():
            return
        for ref in list(self._inflight):
            with contextlib.suppress(Exception):  # best effort; the kill below ends it anyway
                ray.cancel(ref)
        interrupted = bool(self._inflight)
        self._inflight.clear()
        self._starting.clear()
        live = [s for s in self._slots if s.alive]
        if live and not interrupted:
            with contextlib.suppress(Exception):  # the kill below frees everything anyway
                ray.wait([s.actor.close.remote() for s in live], num_returns=len(live), timeout=grace_s)
        for slot in self._slots:
            self._kill(slot)
            slot.alive = False
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:300]
