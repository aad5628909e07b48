"""Throughput profiling: how many tokens per second a model produces at each batch size.

The M1 paper's speed claims (and every time-budget comparison built on them) come from
one protocol, reproduced here: random prompt token ids of a fixed length, greedy
decoding with EOS ignored so every row generates exactly ``gen_len`` tokens, warm-up
runs (compilation, caches, allocator) then the mean of timed repeats. The batch size is
raised past the requested list until throughput stops rising or memory runs out, so the
profile records the peak; a second sweep over generation lengths at one batch size
gives the cost of longer chains (sequential scaling).

Engines are anything with ``timed_greedy`` (``m1eval.engines.base.ThroughputEngine``);
this module only orchestrates and records.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from m1eval.engines.base import EngineError, TimedGeneration, is_out_of_memory
from m1eval.records import NO_PROGRESS, Progress
from m1eval.rundir.runinfo import hardware_info, library_versions
from m1eval.throughput.profile import Measurement, ThroughputProfile


class BenchError(Exception):
    """The benchmark cannot run as asked; the message names the argument to change."""


@dataclass
class BenchSettings:
    """The protocol. Defaults are the paper's: prompt 256, 2 warm-ups, mean of 3 repeats."""

    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32, 128, 512])
    prompt_len: int = 256
    gen_len: int = 4096
    warmup: int = 2
    repeats: int = 3
    find_peak: bool = True
    max_batch: int = 4096
    # Throughput must grow by more than this fraction for a doubling to count as "rising".
    peak_tolerance: float = 0.02
    gen_lens: list[int] | None = None
    length_batch: int | None = None
    seed: int = 0

    def validate(self) -> None:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise BenchError(f"batch_sizes must be positive integers, got {self.batch_sizes}")
        if self.prompt_len < 1 or self.gen_len < 1:
            raise BenchError(f"prompt_len and gen_len must be >= 1 (got {self.prompt_len}, {self.gen_len})")
        if self.repeats < 1 or self.warmup < 0:
            raise BenchError(f"repeats must be >= 1 and warmup >= 0 (got {self.repeats}, {self.warmup})")
        if self.gen_lens is not None and any(g < 1 for g in self.gen_lens):
            raise BenchError(f"gen_lens must be positive integers, got {self.gen_lens}")
        if self.length_batch is not None and self.length_batch < 1:
            raise BenchError(f"length_batch must be >= 1, got {self.length_batch}")

    def length_grid(self) -> list[int]:
        """Generation lengths of the length sweep: given, or gen_len/8 .. gen_len by doubling."""
        if self.gen_lens:
            return sorted(set(self.gen_lens))
        return sorted({max(1, self.gen_len // d) for d in (8, 4, 2, 1)})


def random_prompts(batch_size: int, prompt_len: int, vocab_size: int, seed: int) -> list[list[int]]:
    """Uniform random token ids: content does not matter for speed, only lengths do.

    The lowest ids are skipped because tokenizers put special tokens there.
    """
    low = min(vocab_size - 1, max(0, vocab_size // 16))
    rng = random.Random(seed)
    return [[rng.randrange(low, vocab_size) for _ in range(prompt_len)] for _ in range(batch_size)]


def engine_vocab_size(engine: Any, model: str | None = None) -> int:
    """Vocabulary size for random prompts: from the engine, its tokenizer, or the model folder."""
    for attr in ("vocab_size",):
        value = getattr(engine, attr, None)
        if isinstance(value, int) and value > 1:
            return value
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is not None:
        return len(tokenizer)
    if model is not None:
        try:
            from transformers import AutoTokenizer

            return len(AutoTokenizer.from_pretrained(model))
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot tell"
            raise BenchError(f"cannot tell the vocabulary size of {model!r} ({exc}); give vocab_size") from None
    raise BenchError("cannot tell the engine's vocabulary size; give vocab_size")


Callback = Callable[[str, Measurement | None], None]


class Bencher:
    """Runs the protocol against one engine and collects ``Measurement`` points."""

    def __init__(self, engine: Any, settings: BenchSettings, vocab_size: int, on_event: Callback | None = None):
        if not callable(getattr(engine, "timed_greedy", None)):
            raise BenchError(f"engine {getattr(engine, 'name', engine)!r} cannot be profiled: it has no timed_greedy()")
        settings.validate()
        self.engine = engine
        self.settings = settings
        self.vocab_size = vocab_size
        self.on_event = on_event or (lambda _kind, _m: None)
        self.measurements: list[Measurement] = []

    # ------------------------------------------------------------------ one point

    def measure(self, sweep: str, batch_size: int, gen_len: int) -> Measurement:
        """Warm up, then time ``repeats`` runs; OOM and engine errors become a failed point."""
        s = self.settings
        prompts = random_prompts(batch_size, s.prompt_len, self.vocab_size, seed=s.seed + batch_size)
        point = Measurement(sweep=sweep, batch_size=batch_size, prompt_len=s.prompt_len, gen_len=gen_len)
        try:
            for _ in range(s.warmup):
                self._run(prompts, gen_len)
                self.on_event("run", None)
            results = []
            for _ in range(s.repeats):
                results.append(self._run(prompts, gen_len))
                self.on_event("run", None)
        except Exception as exc:  # noqa: BLE001 - recorded, never swallowed silently
            point.status = "oom" if is_out_of_memory(exc) else "error"
            point.error = f"{type(exc).__name__}: {exc}"[:500]
            self.measurements.append(point)
            self.on_event(point.status, point)
            return point
        point.repeat_seconds = [r.wall_seconds for r in results]
        point.wall_seconds = sum(point.repeat_seconds) / len(results)
        point.generated_tokens = round(sum(r.generated_tokens for r in results) / len(results))
        prefill = [r.prefill_seconds for r in results if r.prefill_seconds is not None]
        point.prefill_seconds = sum(prefill) / len(prefill) if prefill else None
        self.measurements.append(point)
        self.on_event("point", point)
        return point

    def _run(self, prompts: list[list[int]], gen_len: int) -> TimedGeneration:
        started = time.perf_counter()
        result = self.engine.timed_greedy(prompts, gen_len)
        if not isinstance(result, TimedGeneration):
            raise EngineError(f"timed_greedy returned {type(result).__name__}, expected TimedGeneration")
        if result.wall_seconds <= 0:  # an engine that did not time itself: use our clock
            result = TimedGeneration(**{**asdict(result), "wall_seconds": time.perf_counter() - started})
        expected = len(prompts) * gen_len
        if result.generated_tokens != expected:
            raise EngineError(
                f"engine generated {result.generated_tokens} tokens for {len(prompts)} rows x {gen_len}; "
                "throughput needs EOS ignored (exactly gen_len tokens per row)"
            )
        return result

    # ------------------------------------------------------------------ sweeps

    def batch_sweep(self) -> list[Measurement]:
        """Requested batch sizes in order, then doubling while throughput still rises."""
        s = self.settings
        points: list[Measurement] = []
        for batch in sorted(set(s.batch_sizes)):
            point = self.measure("batch", batch, s.gen_len)
            points.append(point)
            if not point.ok:  # a larger batch will not fit either
                return points
        if not s.find_peak:
            return points
        best = max(p.tokens_per_second for p in points)
        batch = points[-1].batch_size
        # Only keep raising when the largest requested batch is (within tolerance) the best so far.
        if points[-1].tokens_per_second < best / (1 + s.peak_tolerance):
            return points
        while batch * 2 <= s.max_batch:
            batch *= 2
            point = self.measure("batch", batch, s.gen_len)
            points.append(point)
            if not point.ok or point.tokens_per_second <= best * (1 + s.peak_tolerance):
                break
            best = point.tokens_per_second
        return points

    def length_sweep(self, batch_size: int) -> list[Measurement]:
        """Each generation length at one batch size; reuses a batch-sweep point it already has."""
        s = self.settings
        points = []
        for gen_len in s.length_grid():
            done = next(
                (
                    m
                    for m in self.measurements
                    if m.sweep == "batch" and m.ok and m.batch_size == batch_size and m.gen_len == gen_len
                ),
                None,
            )
            if done is not None:
                copy = Measurement(**{**asdict(done), "sweep": "length"})
                self.measurements.append(copy)
                self.on_event("point", copy)
                points.append(copy)
                continue
            point = self.measure("length", batch_size, gen_len)
            points.append(point)
            if not point.ok:
                break
        return points

    def planned_runs(self) -> int:
        """Engine calls the requested points need (peak search may add more)."""
        s = self.settings
        return (len(set(s.batch_sizes)) + len(s.length_grid())) * (s.warmup + s.repeats)


def run_bench(
    engine: Any,
    settings: BenchSettings,
    *,
    model: str,
    engine_name: str,
    display_name: str | None = None,
    engine_options: dict[str, Any] | None = None,
    vocab_size: int | None = None,
    progress_description: str | None = None,
    progress: Progress | None = None,
) -> ThroughputProfile:
    """Profile one engine: batch sweep (with peak search), then the length sweep.

    ``progress`` counts engine calls (warm-ups and repeats); the total grows when the peak
    search goes past the planned points.
    """
    bar = progress or NO_PROGRESS
    vocab = vocab_size or engine_vocab_size(engine, model)
    bar.stage(progress_description or f"bench {display_name or model}", None)
    runs = 0
    total = 0  # the bencher's planned runs, set once it exists (below); on_event raises it

    def on_event(kind: str, _point: Measurement | None) -> None:
        nonlocal total, runs
        if kind != "run":
            return
        runs += 1
        bar.advance(1)
        if runs >= total:  # peak search went further
            total = runs + settings.warmup + settings.repeats
            bar.set_total(total)

    bencher = Bencher(engine, settings, vocab, on_event=on_event)
    total = bencher.planned_runs()
    bar.set_total(total)
    length_batch = None
    interrupted = False
    try:
        batch_points = bencher.batch_sweep()
        ok = [p for p in batch_points if p.ok]
        length_batch = settings.length_batch or (max(ok, key=lambda p: p.tokens_per_second).batch_size if ok else None)
        if length_batch is not None:
            bencher.length_sweep(length_batch)
    except KeyboardInterrupt:
        # Keep every finished point: the caller saves a partial profile marked as such.
        interrupted = True
    bar.set_total(runs)
    return ThroughputProfile(
        model=model,
        engine=engine_name,
        display_name=display_name,
        engine_options=dict(engine_options or {}),
        hardware=hardware_info(),
        versions=library_versions(),
        settings={**asdict(settings), "vocab_size": vocab, "length_batch": length_batch, "interrupted": interrupted},
        measurements=bencher.measurements,
    )


def profile_rows(profiles: Sequence[ThroughputProfile]) -> list[dict[str, Any]]:
    """Flat rows for tables and CSV: one per measurement, with derived rates."""
    rows = []
    for prof in profiles:
        for m in prof.measurements:
            rows.append(
                {
                    "model": prof.name,
                    "engine": prof.engine,
                    "sweep": m.sweep,
                    "batch_size": m.batch_size,
                    "prompt_len": m.prompt_len,
                    "gen_len": m.gen_len,
                    "status": m.status,
                    "wall_seconds": m.wall_seconds,
                    "tokens_per_second": m.tokens_per_second,
                    "ms_per_token": m.ms_per_token,
                    "error": m.error,
                }
            )
    return rows
