"""M1's Mamba mixer as a vLLM Mamba layer: the published layer math over vLLM's Mamba-1 state cache.

The math is the one ``m1eval.hybrid.mixer`` documents (read against the published
MambaInLlama layer): ``in_proj`` gives z | x | B | C | dt_low; x and B are d_xb wide and their
groups of d_state are repeated interleaved (``repeat_kv`` style) up to d_inner; x is repeated
before the depthwise conv; dt = dt_proj(dt_low) *with* its bias and the scan adds the bias again
(``delta_bias`` / ``dt_bias``); y = scan + D * x, gated by SiLU(z), then ``out_proj``.

vLLM side: the layer is a ``MambaBase`` with Mamba-1 state shapes ((width - 1, conv_dim) conv
state in vLLM's default "SD" layout, (d_inner, d_state) SSM state) and Mamba-1 metadata, so
vLLM's scheduler, state slots, chunked prefill and "align" prefix caching (the state copies at
block boundaries) drive it as they drive vLLM's own Mamba-1 models. vLLM puts a step's decode
tokens first and its prefill tokens after them; both halves are computed here with one
``MambaOps`` (see ``ops``), chosen once when the model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from m1eval.hybrid.config import HybridConfig
from m1eval.hybrid.vllm_plugin.custom_op import OP_NAME
from m1eval.hybrid.vllm_plugin.ops import MambaOps

if TYPE_CHECKING:
    from vllm.v1.attention.backends.mamba1_attn import Mamba1AttentionMetadata


def repeat_groups(t: torch.Tensor, config: HybridConfig, dim: int = -1) -> torch.Tensor:
    """(..., d_xb, ...) -> (..., d_inner, ...): each group of d_state repeated interleaved (group g -> heads
    g*r .. g*r+r-1), as the published layer repeats x and B like grouped-query attention repeats KV heads."""
    dim = dim % t.dim()
    grouped = t.unflatten(dim, (config.d_xb // config.d_state, config.d_state))
    return grouped.repeat_interleave(config.repeat_group, dim=dim).flatten(dim, dim + 1)


def first_dt(dt_proj: nn.Linear, dt_low: torch.Tensor) -> torch.Tensor:
    """dt before the scan: dt_proj *with* its bias (the scan adds the same bias again, as published)."""
    return dt_proj(dt_low)


class M1MambaMixer(nn.Module):
    """Parameters under the published names (``in_proj``, ``conv1d``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``)."""

    def __init__(self, config: HybridConfig, ops: MambaOps, *, cache_dtypes, prefix: str) -> None:
        super().__init__()
        c = self.config = config
        self.ops = ops
        self.prefix = prefix
        self._cache_dtypes = tuple(cache_dtypes)
        self.in_proj = nn.Linear(c.d_model, 2 * c.d_inner + 2 * c.d_xb + c.dt_rank, bias=c.proj_bias)
        self.conv1d = nn.Conv1d(c.conv_dim, c.conv_dim, c.d_conv, groups=c.conv_dim, padding=c.d_conv - 1,
                                bias=c.conv_bias)  # fmt: skip
        self.dt_proj = nn.Linear(c.dt_rank, c.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(c.d_inner, c.d_state, dtype=torch.float32))
        self.D = nn.Parameter(torch.empty(c.d_inner, dtype=torch.float32))
        self.out_proj = nn.Linear(c.d_inner, c.d_model, bias=c.proj_bias)
        self.kv_cache: tuple[torch.Tensor, ...] = (torch.tensor([]), torch.tensor([]))

    # -- the published layer math ----------------------------------------------------------
    def _project(self, hidden: torch.Tensor):
        """Token-major (tokens, ...) z, x (repeated when before the conv), B (repeated to C's heads), C, dt."""
        c = self.config
        z, x, B, C, dt_low = self.in_proj(hidden).split([c.d_inner, c.d_xb, c.d_xb, c.d_inner, c.dt_rank], dim=-1)
        dt = first_dt(self.dt_proj, dt_low)
        if c.repeat_kv_before_conv:
            x = repeat_groups(x, c)
        heads = c.d_inner // c.d_state
        B = repeat_groups(B, c).unflatten(-1, (heads, c.d_state))  # both kernels need as many B groups as C
        C = C.unflatten(-1, (heads, c.d_state))
        return z, x, B, C, dt

    def _conv_weight(self) -> torch.Tensor:
        return self.conv1d.weight.squeeze(1)  # (conv_dim, width)

    def _states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(slots, conv_dim, width - 1) conv view and (slots, d_inner, d_state) SSM state of vLLM's cache."""
        from vllm.model_executor.layers.mamba.mamba_utils import is_conv_state_dim_first

        conv = self.kv_cache[0] if is_conv_state_dim_first() else self.kv_cache[0].transpose(-1, -2)
        return conv, self.kv_cache[1]

    def forward_impl(self, hidden: torch.Tensor, output: torch.Tensor) -> None:
        from vllm.forward_context import get_forward_context

        c = self.config
        context_metadata = get_forward_context().attn_metadata
        # cast: vLLM types each layer's entry as the generic AttentionMetadata; a Mamba-1 layer's is its Mamba-1 kind
        metadata = (
            cast("Mamba1AttentionMetadata | None", context_metadata.get(self.prefix))
            if isinstance(context_metadata, dict) else None
        )  # fmt: skip
        if metadata is None:  # vLLM's profiling run: shapes only
            output[: hidden.shape[0]] = self.out_proj(self.in_proj(hidden)[..., : c.d_inner])
            return
        n_dec, n_pre = metadata.num_decode_tokens, metadata.num_prefill_tokens
        tokens = n_dec + n_pre
        z, x, B, C, dt = self._project(hidden[:tokens])
        conv_state, ssm_state = self._states()
        A = -torch.exp(self.A_log.float())
        D = self.D.float()
        dt_bias = self.dt_proj.bias.float()
        weight = self._conv_weight()
        heads, width = c.d_inner // c.d_state, c.d_state
        y = torch.empty(tokens, c.d_inner, dtype=hidden.dtype, device=hidden.device)
        if n_dec:
            idx = metadata.state_indices_tensor_d
            xd = self.ops.conv_decode(x[:n_dec].contiguous(), conv_state, weight, self.conv1d.bias, "silu",
                                      conv_state_indices=idx)  # fmt: skip
            if not c.repeat_kv_before_conv:
                xd = repeat_groups(xd, c)
            out = torch.empty(n_dec, heads, width, dtype=hidden.dtype, device=hidden.device)
            self.ops.scan_decode(
                ssm_state.view(ssm_state.shape[0], heads, width, c.d_state), xd.reshape(n_dec, heads, width),
                dt[:n_dec].reshape(n_dec, heads, width), A.view(heads, width, c.d_state), B[:n_dec].contiguous(),
                C[:n_dec].contiguous(), D.view(heads, width), dt_bias.view(heads, width),
                z=z[:n_dec].reshape(n_dec, heads, width), dt_softplus=True, state_batch_indices=idx,
                dst_state_batch_indices=idx, out=out,
            )  # fmt: skip
            y[:n_dec] = out.reshape(n_dec, c.d_inner)
        if n_pre:
            part = slice(n_dec, tokens)
            starts = metadata.query_start_loc_p
            idx = metadata.state_indices_tensor_p
            initial = metadata.has_initial_states_p
            # x channel-last (dim stride 1): vLLM's CUDA conv kernel asserts that layout
            xp = self.ops.conv_prefill(x[part].transpose(0, 1), weight, self.conv1d.bias, conv_states=conv_state,
                                       query_start_loc=starts, cache_indices=idx, has_initial_state=initial,
                                       activation="silu", metadata=metadata)  # fmt: skip
            if not c.repeat_kv_before_conv:
                xp = repeat_groups(xp, c, dim=0)
            yp = self.ops.scan_prefill(
                xp, ssm_state, dt[part].transpose(0, 1).contiguous(), A, B[part].permute(1, 2, 0).contiguous(),
                C[part].permute(1, 2, 0).contiguous(), D, z[part].transpose(0, 1).contiguous(), dt_bias,
                delta_softplus=True, query_start_loc=starts, cache_indices=idx, has_initial_state=initial,
                cu_chunk_seqlen=metadata.cu_chunk_seqlen_p, last_chunk_indices=metadata.last_chunk_indices_p,
            )  # fmt: skip
            y[part] = yp.transpose(0, 1)
        output[:tokens] = self.out_proj(y)

    def forward(self, hidden: torch.Tensor, output: torch.Tensor) -> None:
        from vllm.utils.torch_utils import _encode_layer_name

        getattr(torch.ops.vllm, OP_NAME)(hidden, output, _encode_layer_name(self.prefix))


def make_vllm_layer_class():
    """The vLLM-facing layer class, built when vLLM is importable (this module imports without it)."""
    from vllm.model_executor.layers.mamba.abstract import MambaBase
    from vllm.v1.attention.backends.registry import MambaAttentionBackendEnum

    # vLLM's MambaBase declares kv_cache a tuple of tensors while its own base, AttentionLayerBase, assigns one tensor
    class M1MambaLayer(M1MambaMixer, MambaBase):  # type: ignore[misc]
        """M1MambaMixer registered with vLLM's forward context, Mamba-1 state cache and metadata."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            from vllm.config import get_current_vllm_config

            context = get_current_vllm_config().compilation_config.static_forward_context
            if self.prefix in context:
                raise ValueError(f"duplicate layer name: {self.prefix}")
            context[self.prefix] = self

        def get_state_shape(self):
            return state_shapes(self.config)

        def get_state_dtype(self):
            return self._cache_dtypes

        @property
        def mamba_type(self):
            return MambaAttentionBackendEnum.MAMBA1

    return M1MambaLayer


def state_shapes(config: HybridConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    """vLLM's Mamba-1 state shapes for M1 (tensor parallel size 1): conv over conv_dim channels, SSM d_inner x d_state."""
    from vllm.model_executor.layers.mamba.mamba_utils import MambaStateShapeCalculator

    conv = MambaStateShapeCalculator._orient_conv_shape(config.conv_dim, config.d_conv - 1)
    return conv, (config.d_inner, config.d_state)
