"""The engine contract: every backend turns prompts into ``Completion`` records plus batch timing.

The runner hands an engine the ``GenerationRequest``s still missing (one per problem, with
the sample indices to draw and one seed per sample) and stores each ``BatchResult`` the
moment the engine yields it, so the unit of resume is the engine's batch. Engines know
nothing about run folders, grading or tasks. ``Engine`` is everything the runner uses;
``EngineBase`` gives its defaults and the chores every engine shares (batch timing and
``BatchResult`` building, decoding, freeing the accelerator, recognising out of memory),
so an engine module holds only what is particular to its backend. The registry of engine
names is in ``m1eval.engines``.
"""

from __future__ import annotations

import gc
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from m1eval.records import PREFIX_GRID, BatchTiming, Completion, SamplingConfig

if TYPE_CHECKING:
    from m1eval.engines.options import OptionSpec

# Engines whose requests finish one by one (openai, vllm) yield what finished at least this
# often (seconds), so an interrupt or crash loses only the requests still running.
FLUSH_SECONDS = 2.0


class EngineError(Exception):
    """The engine cannot start or failed; the message says what to change."""


class EngineOutOfMemory(EngineError):
    """The engine ran out of (GPU or host) memory; fewer concurrent sequences may help."""


@dataclass(frozen=True)
class GenerationRequest:
    """All samples still to draw for one problem; ``seeds[i]`` goes with ``sample_indices[i]``."""

    problem_id: str
    prompt: str
    sample_indices: list[int]
    seeds: list[int]
    prompt_token_ids: list[int] | None = None

    def __post_init__(self) -> None:
        if len(self.sample_indices) != len(self.seeds):
            raise ValueError(
                f"{self.problem_id}: {len(self.sample_indices)} sample indices but {len(self.seeds)} seeds"
            )


@dataclass
class BatchResult:
    """What an engine yields: finished completions of one batch and that batch's timing."""

    completions: list[Completion]
    timing: BatchTiming
    extra: dict[str, Any] = field(default_factory=dict)


# The hooks the runner sets while it generates (None: nobody listens).
ProgressHook = Callable[[int, int], None]  # (completions finished, tokens generated) since the last call
WaitHook = Callable[[int, float], None]  # (requests in flight, seconds the oldest has waited)
NoticeHook = Callable[[str], None]  # one line worth telling the user (a retry, a lost replica)


@runtime_checkable
class Engine(Protocol):
    """What the runner uses of an engine; ``EngineBase`` provides every member but ``generate``."""

    name: str
    # The model's tokenizer when the engine holds one (the runner then renders prompts with
    # it instead of loading its own); None otherwise.
    tokenizer: Any

    # The options in effect after the engine's own defaults (recorded in the manifest); None: not known.
    # Read-only here (callers only read it), so an engine may declare it never None.
    @property
    def options(self) -> dict[str, Any] | None: ...

    on_progress: ProgressHook | None
    on_wait: WaitHook | None
    on_notice: NoticeHook | None

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """Yield batches as they finish; every requested (problem, sample) appears exactly once."""
        ...

    def generate_pending(
        self, requests: Iterable[GenerationRequest], sampling: SamplingConfig, samples_per_chunk: int
    ) -> Iterator[BatchResult]:
        """Every pending request of a run (a lazy stream), in as many ``generate`` calls as the engine likes."""
        ...

    def close(self) -> None:
        """Free the model and any worker processes."""
        ...


def chunk_requests(requests: Iterable[GenerationRequest], samples_per_chunk: int) -> Iterator[list[GenerationRequest]]:
    """Whole requests per chunk, about ``samples_per_chunk`` samples each (at least one request); lazy."""
    current: list[GenerationRequest] = []
    size = 0
    for request in requests:
        if current and size + len(request.sample_indices) > samples_per_chunk:
            yield current
            current, size = [], 0
        current.append(request)
        size += len(request.sample_indices)
    if current:
        yield current


class EngineBase:
    """Defaults of the ``Engine`` contract and the chores engines share; engines inherit it."""

    name: str = "engine"
    # every ``-o key=value`` the engine accepts, declared once (``m1eval.engines.options``)
    option_specs: ClassVar[dict[str, OptionSpec]] = {}
    tokenizer: Any = None
    options: dict[str, Any] | None = None
    on_progress: ProgressHook | None = None
    on_wait: WaitHook | None = None
    on_notice: NoticeHook | None = None

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Checks of option values beyond their declared types, run when a run is planned, before any
        run folder exists (the openai engine: it needs an http(s) endpoint); nothing to check by default."""

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        raise NotImplementedError

    def generate_pending(
        self, requests: Iterable[GenerationRequest], sampling: SamplingConfig, samples_per_chunk: int
    ) -> Iterator[BatchResult]:
        """Chunks of about ``samples_per_chunk`` samples (whole requests), one ``generate`` call each:
        memory stays bounded by one chunk, and a chunk is the unit an interrupt can lose."""
        for chunk in chunk_requests(requests, samples_per_chunk):
            yield from self.generate(chunk, sampling)

    def decode(self, ids: Sequence[int]) -> str:
        """Completion text of token ids, special tokens dropped (every engine decodes alike)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def report_progress(self, completions: int, tokens: int) -> None:
        """Tell the runner's ``on_progress`` hook, if one is set."""
        if self.on_progress is not None:
            self.on_progress(completions, tokens)

    def close(self) -> None:
        free_accelerator()


@dataclass
class BatchClock:
    """When a batch started (wall clock, for the timing record) and how long it took (monotonic)."""

    started: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    wall: float | None = None

    def stop(self) -> float:
        """Fix the batch's wall time now (before decoding, say); ``batch_result`` otherwise takes it then."""
        self.wall = time.perf_counter() - self.t0
        return self.wall


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


def batch_result(
    engine: str, completions: Sequence[Completion], clock: BatchClock, extra: dict[str, Any] | None = None
) -> BatchResult:
    """One finished batch: its completions get a fresh batch id, its timing sums their tokens."""
    batch_id = new_batch_id()
    for completion in completions:
        completion.batch_id = batch_id
    wall = clock.wall if clock.wall is not None else time.perf_counter() - clock.t0
    return BatchResult(
        list(completions), batch_timing(batch_id, engine, completions, wall, clock.started), dict(extra or {})
    )


def free_accelerator() -> None:
    """Drop unreferenced tensors and hand cached GPU memory back (after an OOM, or at close)."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported just for this
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


_OOM_PATTERNS = re.compile(
    r"out of memory|No available memory for the cache blocks|not enough (KV cache )?memory|"
    r"Cannot allocate memory|insufficient memory|larger than the available KV cache",
    re.IGNORECASE,
)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError, MemoryError, and the messages vLLM and allocators use for it."""
    if isinstance(exc, (EngineOutOfMemory, MemoryError)):
        return True
    return "OutOfMemory" in type(exc).__name__ or bool(_OOM_PATTERNS.search(str(exc)))


@dataclass(frozen=True)
class TimedGeneration:
    """One timed greedy batch for throughput profiles: EOS ignored, exactly gen_len tokens a row."""

    batch_size: int
    prompt_len: int
    gen_len: int
    wall_seconds: float
    generated_tokens: int
    prefill_seconds: float | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.wall_seconds if self.wall_seconds > 0 else float("nan")


@runtime_checkable
class ThroughputEngine(Protocol):
    """Engines that `m1eval bench` can profile (vllm, hf, m1; not remote servers)."""

    name: str

    def timed_greedy(self, prompt_token_ids: list[list[int]], gen_len: int) -> TimedGeneration:
        """Greedy-decode every row for exactly ``gen_len`` tokens (EOS ignored) and time it."""
        ...


def prefix_chars(decode, token_ids: Sequence[int], grid: Sequence[int] = PREFIX_GRID) -> dict[str, int]:
    """Characters of decoded text after the first L tokens, for each L in ``grid`` below the length.

    ``decode`` is ``tokenizer.decode``-like (list of ids -> str). The full length is always
    included so a cut at or beyond it keeps the whole text.
    """
    out: dict[str, int] = {}
    n = len(token_ids)
    for budget in grid:
        if budget >= n:
            break
        out[str(budget)] = len(decode(list(token_ids[:budget])))
    out[str(n)] = len(decode(list(token_ids)))
    return out


def batch_timing(
    batch_id: str, engine: str, completions: Sequence[Completion], wall_seconds: float, started_at: float | None
) -> BatchTiming:
    """The timing record of one finished batch; token totals come from its completions."""
    return BatchTiming(
        batch_id=batch_id,
        engine=engine,
        batch_size=len(completions),
        wall_seconds=wall_seconds,
        generated_tokens=sum(c.completion_tokens for c in completions),
        prompt_tokens=sum(c.prompt_tokens for c in completions),
        started_at=started_at,
    )
