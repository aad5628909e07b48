"""The M1 hybrid: Llama-3.2's decoder with most attention layers swapped for Mamba mixers.

Module names follow the published checkpoint exactly (``model.layers.{i}.mamba.*`` or
``model.layers.{i}.mha.*``, ``mlp.{gate,up,down}_proj``, ``input_layernorm``,
``post_attention_layernorm``, ``model.embed_tokens``, ``model.norm``, ``lm_head``) so that
``load_state_dict(strict=True)`` is the key check. Both layer kinds are pre-norm blocks:
h += mixer(norm(h)); h += mlp(norm(h)).

Two entry points: ``forward`` (the whole sequence; also the prefill that fills a
``HybridCache``) and ``decode_step`` (one token per row against the cache, written with
tensor-valued slot and positions so it can be captured in a CUDA graph).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from m1eval.hybrid.attention import Attention
from m1eval.hybrid.config import HybridConfig
from m1eval.hybrid.mixer import MambaMixer

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu}


class RMSNorm(nn.Module):
    """Llama's RMSNorm: normalise in fp32, scale in the input dtype."""

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


class MLP(nn.Module):
    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.d_model, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.d_model, bias=False)
        if config.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {config.hidden_act!r}")
        self.act = _ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """One block; the mixer attribute is named ``mamba`` or ``mha`` as in the checkpoint."""

    def __init__(self, config: HybridConfig, index: int) -> None:
        super().__init__()
        self.index = index
        self.is_attention = index in config.attn_layers
        if self.is_attention:
            self.mha = Attention(config)
        else:
            self.mamba = MambaMixer(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.d_model, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.rms_norm_eps)

    def _finish(self, hidden: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        hidden = hidden + mixed
        return hidden + self.mlp(self.post_attention_layernorm(hidden))

    def forward(self, hidden, positions, mask, cache: HybridCache | None) -> torch.Tensor:
        normed = self.input_layernorm(hidden)
        i = self.index
        if self.is_attention:
            keys = None if cache is None else cache.key[i]
            values = None if cache is None else cache.value[i]
            mixed = self.mha(normed, positions, mask, keys, values)
        else:
            conv = None if cache is None else cache.conv[i]
            ssm = None if cache is None else cache.ssm[i]
            mixed = self.mamba(normed, mask, conv, ssm)
        return self._finish(hidden, mixed)

    def step(self, hidden, positions, slot, cache: HybridCache, kv_len: int | None) -> torch.Tensor:
        normed = self.input_layernorm(hidden)
        i = self.index
        if self.is_attention:
            end = cache.capacity if kv_len is None else kv_len
            mixed = self.mha.step(normed, positions, slot, cache.key[i][:, :, :end], cache.value[i][:, :, :end],
                                  cache.key_valid[:, :end])  # fmt: skip
        else:
            mixed = self.mamba.step(normed, cache.conv[i], cache.ssm[i])
        return self._finish(hidden, mixed)


@dataclass
class HybridCache:
    """Decode state: conv/SSM states for Mamba layers, a KV cache for attention layers.

    KV slots are shared by all rows (slot t holds every row's t-th token of the padded
    batch); ``key_valid`` masks the left padding. ``length`` slots are filled;
    ``positions`` is each row's next RoPE position (its real token count).
    """

    conv: dict[int, torch.Tensor]
    ssm: dict[int, torch.Tensor]
    key: dict[int, torch.Tensor]
    value: dict[int, torch.Tensor]
    key_valid: torch.Tensor
    positions: torch.Tensor
    length: int = 0

    @classmethod
    def allocate(cls, config: HybridConfig, batch: int, capacity: int, device, dtype) -> HybridCache:
        c = config
        kv_shape = (batch, c.num_key_value_heads, capacity, c.head_dim)
        ssm_shape = (batch, c.d_inner, c.d_state)  # fp32 whatever the model dtype: it integrates over the whole text
        return cls(
            conv={i: torch.zeros(batch, c.conv_dim, c.d_conv, device=device, dtype=dtype) for i in c.mamba_layers},
            ssm={i: torch.zeros(ssm_shape, device=device, dtype=torch.float32) for i in c.mamba_layers},
            key={i: torch.zeros(kv_shape, device=device, dtype=dtype) for i in c.attn_layers},
            value={i: torch.zeros(kv_shape, device=device, dtype=dtype) for i in c.attn_layers},
            key_valid=torch.zeros(batch, capacity, dtype=torch.bool, device=device),
            positions=torch.zeros(batch, dtype=torch.long, device=device),
        )

    @property
    def capacity(self) -> int:
        return self.key_valid.shape[1]

    @property
    def batch_size(self) -> int:
        return self.key_valid.shape[0]

    def tensors(self) -> list[torch.Tensor]:
        return [*self.conv.values(), *self.ssm.values(), *self.key.values(), *self.value.values(), self.key_valid]

    def select(self, rows: torch.Tensor) -> HybridCache:
        """A cache holding ``rows`` (indices, repeats allowed): n-expansion and compaction."""
        pick = lambda t: t.index_select(0, rows)
        return HybridCache(
            conv={i: pick(t) for i, t in self.conv.items()},
            ssm={i: pick(t) for i, t in self.ssm.items()},
            key={i: pick(t) for i, t in self.key.items()},
            value={i: pick(t) for i, t in self.value.items()},
            key_valid=pick(self.key_valid),
            positions=pick(self.positions),
            length=self.length,
        )

    def reserve(self, capacity: int) -> None:
        """Grow the KV slots to at least ``capacity`` (doubling), keeping the filled ones."""
        if capacity <= self.capacity:
            return
        new = max(capacity, 2 * self.capacity)
        grow = lambda t: F.pad(t, (0, 0, 0, new - t.shape[2]))
        self.key = {i: grow(t) for i, t in self.key.items()}
        self.value = {i: grow(t) for i, t in self.value.items()}
        self.key_valid = F.pad(self.key_valid, (0, new - self.capacity), value=False)


@dataclass
class HybridOutput:
    logits: torch.Tensor


class HybridBackbone(nn.Module):
    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.n_layer))
        self.norm = RMSNorm(config.d_model, config.rms_norm_eps)


class HybridForCausalLM(nn.Module):
    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        self.model = HybridBackbone(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def allocate_cache(self, batch: int, capacity: int) -> HybridCache:
        weight = self.lm_head.weight
        return HybridCache.allocate(self.config, batch, capacity, weight.device, weight.dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: HybridCache | None = None,
        last_only: bool = False,
    ) -> HybridOutput:
        """input_ids (batch, seqlen), left-padded where ``attention_mask`` is 0.

        With a ``cache`` (capacity >= seqlen) this is the prefill: states and KV slots are
        filled and the cache is ready for ``decode_step``. ``last_only`` skips the LM head
        on every position but the last (a 128k vocab over a long prompt is large).
        """
        mask = None if attention_mask is None else attention_mask.to(torch.bool)
        if mask is None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        else:
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            hidden = layer(hidden, positions, mask, cache)
        if last_only:
            hidden = hidden[:, -1:]
        logits = self.lm_head(self.model.norm(hidden))
        if cache is not None:
            seqlen = input_ids.shape[1]
            cache.key_valid.zero_()
            cache.key_valid[:, :seqlen] = True if mask is None else mask
            cache.positions.copy_(positions[:, -1] + 1)
            cache.length = seqlen
        return HybridOutput(logits=logits)

    def decode_step(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        slot: torch.Tensor,
        cache: HybridCache,
        kv_len: int | None = None,
    ) -> torch.Tensor:
        """Logits (batch, vocab) for one new token per row written at KV ``slot``.

        Pure in-place tensor work: with ``kv_len=None`` it attends over the whole cache
        capacity (fixed shapes, CUDA-graph capturable); the eager path passes
        ``kv_len = slot + 1`` to skip empty slots. The caller advances ``cache.length``.
        """
        cache.key_valid.index_fill_(1, slot.reshape(1), True)
        hidden = self.model.embed_tokens(tokens)
        # cast: an nn.ModuleList iterates as plain Modules; every entry of this one is a DecoderLayer
        for layer in cast("Iterable[DecoderLayer]", self.model.layers):
            hidden = layer.step(hidden, positions, slot, cache, kv_len)
        return self.lm_head(self.model.norm(hidden))
