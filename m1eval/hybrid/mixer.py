"""The MambaInLlama Mamba mixer: a Mamba-1 layer initialised from (and shaped like) attention.

Read against ``jxiw/MambaInLlama`` ``mamba/hybrid_mamba_layer.py`` (the layer M1 uses):

- ``in_proj`` yields, in this order, z (d_inner), x (d_xb), B (d_xb), C (d_inner) and the
  low-rank dt (dt_rank). The distillation maps attention onto the SSM as V -> x, K -> B,
  Q -> C, so x and B are as narrow as Llama's KV projections (d_xb = kv_heads * head_dim)
  and C as wide as its queries.
- x and B are split into groups of d_state and each group is repeated ``d_inner // d_xb``
  times *interleaved* (transformers' ``repeat_kv``: group g becomes heads g*r .. g*r+r-1),
  exactly like grouped-query attention repeats KV heads. x is repeated *before* the causal
  depthwise conv (``repeat_kv_before_conv=True``), so the conv has d_inner channels.
- C is split into d_inner // d_state heads of width d_state; channel c of x uses B and C
  head c // d_state (``selective_scan_fn``'s grouped B/C with d_inner // d_state groups).
- A_log is per channel, shape (d_inner, d_state); A = -exp(A_log).
- dt = dt_proj(dt_low) *includes* dt_proj.bias, and the scan adds the same bias again as
  ``delta_bias`` before the softplus; the decode step does the same via ``dt_bias``. The
  published model was distilled and trained with this double bias, so it is kept.
- y = scan(...) + D * x, gated by SiLU(z), then ``out_proj``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from m1eval.hybrid import kernels
from m1eval.hybrid.config import HybridConfig


class MambaMixer(nn.Module):
    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.in_proj = nn.Linear(c.d_model, 2 * c.d_inner + 2 * c.d_xb + c.dt_rank, bias=c.proj_bias)
        self.conv1d = nn.Conv1d(c.conv_dim, c.conv_dim, c.d_conv, groups=c.conv_dim, padding=c.d_conv - 1,
                                bias=c.conv_bias)  # fmt: skip
        self.dt_proj = nn.Linear(c.dt_rank, c.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, c.d_state + 1, dtype=torch.float32)).repeat(c.d_inner, 1))
        self.D = nn.Parameter(torch.ones(c.d_inner))
        self.out_proj = nn.Linear(c.d_inner, c.d_model, bias=c.proj_bias)

    # -- helpers -------------------------------------------------------------------------
    def _split(self, hidden: torch.Tensor):
        c = self.config
        return self.in_proj(hidden).split([c.d_inner, c.d_xb, c.d_xb, c.d_inner, c.dt_rank], dim=-1)

    def _repeat_groups(self, t: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """(..., d_xb, ...) -> (..., d_inner, ...): groups of d_state repeated interleaved, like repeat_kv."""
        c = self.config
        dim = dim % t.dim()
        grouped = t.unflatten(dim, (c.d_xb // c.d_state, c.d_state))
        return grouped.repeat_interleave(c.repeat_group, dim=dim).flatten(dim, dim + 1)

    def _conv_weight(self) -> torch.Tensor:
        return self.conv1d.weight.squeeze(1)  # (conv_dim, d_conv), the kernels' layout

    # -- prefill -------------------------------------------------------------------------
    def forward(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor | None = None,
        conv_state: torch.Tensor | None = None,
        ssm_state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden (batch, seqlen, d_model); ``mask`` (batch, seqlen) is False on left padding.

        Padding is made invisible by zeroing x before and after the conv: with x = 0 the
        conv sees the zeros a causal conv pads with, and the SSM state stays exactly 0
        until the first real token, so a padded row computes what it would alone.
        Fills ``conv_state`` (batch, conv_dim, d_conv) and ``ssm_state`` (batch, d_inner,
        d_state) in place when given.
        """
        c = self.config
        seqlen = hidden.shape[1]
        z, x, B, C, dt = self._split(hidden)
        dt = self.dt_proj(dt)  # first application of dt_proj.bias (the scan adds it again)
        if c.repeat_kv_before_conv:
            x = self._repeat_groups(x)
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(-1), 0)
        x = x.transpose(1, 2).contiguous()  # (batch, conv_dim, seqlen)
        if conv_state is not None:
            conv_state.copy_(F.pad(x, (c.d_conv - seqlen, 0)))  # last d_conv inputs, zero-padded or cropped
        x = kernels.pick("causal_conv1d_fn", x.device)(x=x, weight=self._conv_weight(), bias=self.conv1d.bias,
                                                        activation="silu")  # fmt: skip
        if not c.repeat_kv_before_conv:
            x = self._repeat_groups(x, dim=1)
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(1), 0)
        heads = c.d_inner // c.d_state
        # B is repeated up to C's d_inner // d_state heads: both kernels require B and C to
        # have the same number of groups.
        B = self._repeat_groups(B).unflatten(-1, (heads, c.d_state)).permute(0, 2, 3, 1).contiguous()
        C = C.unflatten(-1, (heads, c.d_state)).permute(0, 2, 3, 1).contiguous()
        A = -torch.exp(self.A_log.float())
        result = kernels.pick("selective_scan_fn", x.device)(
            x.contiguous(), dt.transpose(1, 2).contiguous(), A, B, C, self.D.float(),
            z=z.transpose(1, 2).contiguous(), delta_bias=self.dt_proj.bias.float(), delta_softplus=True,
            return_last_state=ssm_state is not None,
        )  # fmt: skip
        if ssm_state is not None:
            y, last_state = result
            ssm_state.copy_(last_state)
        else:
            y = result
        return self.out_proj(y.transpose(1, 2))

    # -- decode --------------------------------------------------------------------------
    def step(self, hidden: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor) -> torch.Tensor:
        """One token: hidden (batch, d_model) -> (batch, d_model); both states advance in place."""
        c = self.config
        batch = hidden.shape[0]
        z, x, B, C, dt = self._split(hidden)
        dt = self.dt_proj(dt)  # bias applied here, and again below as dt_bias (as published)
        if c.repeat_kv_before_conv:
            x = self._repeat_groups(x)
        x = kernels.pick("causal_conv1d_update", x.device)(x.contiguous(), conv_state, self._conv_weight(),
                                                           self.conv1d.bias, "silu")  # fmt: skip
        if not c.repeat_kv_before_conv:
            x = self._repeat_groups(x)
        heads, width = c.d_inner // c.d_state, c.d_state
        A = -torch.exp(self.A_log.float())
        y = kernels.pick("selective_state_update", x.device)(
            ssm_state.view(batch, heads, width, c.d_state),
            x.reshape(batch, heads, width),
            dt.reshape(batch, heads, width),
            A.view(heads, width, c.d_state),
            self._repeat_groups(B).reshape(batch, heads, c.d_state),  # same group count as C, as the kernel needs
            C.reshape(batch, heads, c.d_state),
            self.D.float().view(heads, width),
            z=z.reshape(batch, heads, width),
            dt_bias=self.dt_proj.bias.float().view(heads, width),
            dt_softplus=True,
        )
        return self.out_proj(y.reshape(batch, c.d_inner))
