"""Batched generation: one left-padded prefill, n-way state expansion, one-token decode steps.

Prompts are prefilled once each; the filled caches (conv/SSM states, KV slots) are then
copied n times, one row per sample, so n samples cost one prefill. Decode runs every row
one token per step; rows stop at EOS (or a caller's stop test) and the batch is compacted
when half its rows are done (eager path). On CUDA the step can be replayed as a CUDA
graph; then the batch stays fixed and the KV cache is allocated at full length up front.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from m1eval.hybrid.kernels import CapturedDecode
from m1eval.hybrid.model import HybridCache, HybridForCausalLM
from m1eval.hybrid.sampling import SamplingParams, sample

# grow the KV cache in pieces of this many slots on the eager path
_KV_CHUNK = 256
GREEDY = SamplingParams()


@dataclass
class GenerationResult:
    """Per output row (prompt-major: all samples of prompt 0, then prompt 1, ...)."""

    tokens: list[list[int]]
    finish_reasons: list[str]
    prompt_lengths: list[int]
    prefill_seconds: float
    decode_seconds: float

    @property
    def generated_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if len(prompt):
            ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


@torch.inference_mode()
def generate(
    model: HybridForCausalLM,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    samples_per_prompt: int | Sequence[int] = 1,
    seeds: Sequence[int] | None = None,
    sampling: SamplingParams = GREEDY,
    eos_token_ids: Sequence[int] = (),
    pad_token_id: int = 0,
    ignore_eos: bool = False,
    stop_test: Callable[[int, list[int]], bool] | None = None,
    stop_test_every: int = 16,
    cuda_graph: bool | None = None,
    on_tokens: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Sample ``samples_per_prompt`` continuations of each prompt.

    ``seeds`` has one entry per output row (default: the row index). ``stop_test(row,
    tokens)`` is called every ``stop_test_every`` steps for running rows (e.g. stop
    strings) and ends a row with reason "stop", like EOS. ``on_tokens(k)`` reports k new
    tokens for progress bars.
    """
    if not prompts:
        return GenerationResult([], [], [], 0.0, 0.0)
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    counts = [samples_per_prompt] * len(prompts) if isinstance(samples_per_prompt, int) else list(samples_per_prompt)
    if len(counts) != len(prompts) or min(counts) < 1:
        raise ValueError("samples_per_prompt needs one count >= 1 per prompt")
    rows = sum(counts)
    seeds = list(range(rows)) if seeds is None else list(seeds)
    if len(seeds) != rows:
        raise ValueError(f"{len(seeds)} seeds for {rows} output rows")
    device = model.lm_head.weight.device
    graph = device.type == "cuda" if cuda_graph is None else cuda_graph
    eos = torch.tensor(sorted(set(eos_token_ids)) if not ignore_eos else [], dtype=torch.long, device=device)

    _sync(device)
    started = time.perf_counter()
    ids, mask = left_pad(prompts, pad_token_id, device)
    width = ids.shape[1]
    capacity = width + max_new_tokens if graph else width + min(max_new_tokens, _KV_CHUNK)
    cache = model.allocate_cache(len(prompts), capacity)
    logits = model(ids, mask, cache=cache, last_only=True).logits[:, -1]
    expand = torch.repeat_interleave(torch.arange(len(prompts), device=device), torch.tensor(counts, device=device))
    if rows != len(prompts):
        cache, logits = cache.select(expand), logits.index_select(0, expand)
    _sync(device)
    prefill_seconds = time.perf_counter() - started

    seed_tensor = torch.tensor(seeds, dtype=torch.long, device=device)
    live = list(range(rows))  # output row of each batch row; -1 once finished but still in the batch
    tokens: list[list[int]] = [[] for _ in range(rows)]
    reasons = ["length"] * rows
    step_fn = _captured_step(model, cache) if graph else None
    for step in range(max_new_tokens):
        token = sample(logits, sampling, seed_tensor, step)
        values = token.tolist()
        hit_eos = torch.isin(token, eos).tolist() if len(eos) else [False] * len(values)
        check_stop = stop_test is not None and (step + 1) % stop_test_every == 0
        appended = 0
        for batch_row, row in enumerate(live):
            if row < 0:
                continue
            tokens[row].append(values[batch_row])
            appended += 1
            if hit_eos[batch_row] or (check_stop and stop_test is not None and stop_test(row, tokens[row])):
                reasons[row] = "stop"
                live[batch_row] = -1
        if on_tokens is not None:
            on_tokens(appended)
        running = [b for b, row in enumerate(live) if row >= 0]
        if not running or step == max_new_tokens - 1:
            break
        if step_fn is None and len(running) <= len(live) // 2:  # compact: finished rows cost compute
            index = torch.tensor(running, device=device)
            cache, token, seed_tensor = cache.select(index), token[index], seed_tensor[index]
            live = [live[b] for b in running]
        slot = torch.tensor(cache.length, device=device)
        if step_fn is not None:
            logits = step_fn(tokens=token, positions=cache.positions, slot=slot)
        else:
            if cache.length >= cache.capacity:
                cache.reserve(cache.capacity + _KV_CHUNK)
            logits = model.decode_step(token, cache.positions, slot, cache, kv_len=cache.length + 1)
        cache.positions += 1
        cache.length += 1
    _sync(device)
    decode_seconds = time.perf_counter() - started - prefill_seconds
    prompt_lengths = [len(p) for p, count in zip(prompts, counts) for _ in range(count)]
    return GenerationResult(tokens, reasons, prompt_lengths, prefill_seconds, decode_seconds)


def _captured_step(model: HybridForCausalLM, cache: HybridCache) -> CapturedDecode:
    """The decode step of this batch as a CUDA graph over the full-capacity cache."""
    device = cache.key_valid.device
    static = {
        "tokens": torch.zeros(cache.batch_size, dtype=torch.long, device=device),
        "positions": cache.positions.clone(),
        "slot": torch.zeros((), dtype=torch.long, device=device),
    }

    def step(tokens: torch.Tensor, positions: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        return model.decode_step(tokens, positions, slot, cache, kv_len=None)

    return CapturedDecode(step, static, cache.tensors())
