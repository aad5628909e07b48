"""Token sampling with one seed per row that does not depend on batching.

Each row's random numbers are a counter-based hash of (row seed, step, vocab index),
and a token is drawn by the Gumbel-max trick over the temperature-scaled, top-k/top-p
filtered logits. Compared with one ``torch.Generator`` per row this is a single
vectorised op for the whole batch (no per-row launches, CUDA-graph friendly), gives the
same draws on any device and in any batch composition, and makes sample i of a problem
reproducible from its seed alone, whatever else ran beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # < 2^31, so x * _MIX stays inside int64 for any 32-bit x
_GOLDEN = 0x9E3779B1


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer on int64 tensors holding values in [0, 2^32)."""
    x = x ^ (x >> 16)
    x = (x * _MIX) & _MASK32
    x = x ^ (x >> 16)
    x = (x * _MIX) & _MASK32
    return x ^ (x >> 16)


def uniform_noise(seeds: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    """(rows, vocab) uniforms in (0, 1), a pure function of (seed, step, vocab index)."""
    row_key = _hash32(_hash32(seeds.long() & _MASK32) ^ ((step * _GOLDEN) & _MASK32))
    columns = torch.arange(vocab, device=seeds.device, dtype=torch.long)
    bits = _hash32(_hash32((row_key[:, None] + columns * _GOLDEN) & _MASK32) ^ row_key[:, None])
    return ((bits >> 8).float() + 0.5) / float(1 << 24)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def filter_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Temperature-scaled logits with everything outside top-k and the top-p nucleus at -inf."""
    logits = logits.float() / params.temperature
    if 0 < params.top_k < logits.shape[-1]:
        kth = logits.topk(params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        outside = probs.cumsum(-1) - probs > params.top_p  # mass before this token already covers top_p
        outside[:, 0] = False
        logits = logits.masked_fill(outside.scatter(-1, order, outside), float("-inf"))
    return logits


def sample(logits: torch.Tensor, params: SamplingParams, seeds: torch.Tensor, step: int) -> torch.Tensor:
    """One token per row of ``logits`` (rows, vocab); ``seeds`` (rows,) int64."""
    if params.greedy:
        return logits.argmax(-1)
    filtered = filter_logits(logits, params)
    gumbel = -torch.log(-torch.log(uniform_noise(seeds, step, logits.shape[-1])))
    return (filtered + gumbel).argmax(-1)
