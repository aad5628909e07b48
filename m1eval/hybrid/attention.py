"""The attention layers M1 keeps: fused-qkv grouped-query attention with plain RoPE.

Read against the published M1 / MambaInLlama code, whose ``MHADecoderLayer`` wraps
mamba_ssm's ``MHA(embed_dim, num_heads, num_heads_kv, qkv_proj_bias=False,
out_proj_bias=False, rotary_emb_dim=head_dim, rotary_emb_base=rope_theta, causal=True)``:

- ``in_proj`` is one matrix producing q | k | v (q: heads * head_dim, then k and v:
  kv_heads * head_dim each); ``out_proj`` maps back to d_model; softmax scale 1/sqrt(hd).
- RoPE is the non-interleaved (rotate-half, GPT-NeoX / Llama) form over the full head
  dim with base ``rope_theta`` and inv_freq = theta^(-2i/d), and NO Llama-3 rope scaling:
  mamba_ssm's ``RotaryEmbedding`` takes only a base (plus xpos scale_base, unused), so
  the ``rope_scaling`` block of the Llama-3.2 config.json is never read by the published
  model. M1 was distilled and fine-tuned with that unscaled RoPE, so applying Llama-3's
  scaling here would change its logits.
- Positions are per row: left padding is not counted, so a padded row sees the same
  positions as the prompt alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from m1eval.hybrid.config import HybridConfig


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (*positions.shape, head_dim // 2) in fp32."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.to(torch.float32).unsqueeze(-1) * inv_freq
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (batch, heads, seqlen, head_dim); cos/sin (batch, seqlen, head_dim // 2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.heads, self.kv_heads, self.head_dim = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.in_proj = nn.Linear(c.d_model, self.head_dim * (self.heads + 2 * self.kv_heads), bias=False)
        self.out_proj = nn.Linear(self.heads * self.head_dim, c.d_model, bias=False)

    def _qkv(self, hidden: torch.Tensor, positions: torch.Tensor):
        """hidden (batch, seqlen, d_model) -> q (b, heads, l, hd), k, v (b, kv_heads, l, hd), RoPE applied."""
        batch, seqlen, _ = hidden.shape
        q, k, v = self.in_proj(hidden).split(
            [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim], dim=-1
        )
        q = q.view(batch, seqlen, self.heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, seqlen, self.kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, seqlen, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope_cos_sin(positions, self.head_dim, self.config.rope_theta)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=self.kv_heads != self.heads)
        batch, _, seqlen, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, seqlen, self.heads * self.head_dim))

    def forward(
        self,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        key_cache: torch.Tensor | None = None,
        value_cache: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Prefill: causal attention over the prompt; pad keys are masked, and the caches'
        first ``seqlen`` slots are filled. A pad query may see itself only, so no row of
        the softmax is empty (its output is discarded anyway)."""
        seqlen = hidden.shape[1]
        q, k, v = self._qkv(hidden, positions)
        if key_cache is not None:
            if value_cache is None:
                raise ValueError("prefill got a key cache without a value cache")
            key_cache[:, :, :seqlen] = k
            value_cache[:, :, :seqlen] = v
        causal = torch.ones(seqlen, seqlen, dtype=torch.bool, device=hidden.device).tril()
        if mask is None:
            allowed = causal
        else:
            eye = torch.eye(seqlen, dtype=torch.bool, device=hidden.device)
            allowed = ((causal & mask[:, None, :]) | eye).unsqueeze(1)
        return self._attend(q, k, v, allowed)

    def step(
        self,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        slot: torch.Tensor,
        key_cache: torch.Tensor,
        value_cache: torch.Tensor,
        key_valid: torch.Tensor,
    ) -> torch.Tensor:
        """One token per row: hidden (batch, d_model), positions (batch,), ``slot`` a 0-d long
        tensor (a tensor so that a CUDA graph can replay the step at every slot). Caches are
        (batch, kv_heads, S, hd) and ``key_valid`` (batch, S) with S the slots to attend over;
        the new slot must already be marked valid."""
        q, k, v = self._qkv(hidden.unsqueeze(1), positions.unsqueeze(1))
        index = slot.reshape(1)
        key_cache.index_copy_(2, index, k)
        value_cache.index_copy_(2, index, v)
        return self._attend(q, key_cache, value_cache, key_valid[:, None, None, :]).squeeze(1)
