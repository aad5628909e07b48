"""Pure-PyTorch reference of the four Mamba kernels, with the kernels' own signatures.

Each function takes exactly the arguments and tensor layouts of its CUDA counterpart
(mamba_ssm 2.x ``selective_scan_fn`` / ``selective_state_update``, causal_conv1d's
``causal_conv1d_fn`` / ``causal_conv1d_update``), so ``kernels`` can swap one for the
other without any layout glue and a test can check the glue once. They are the CPU path
and the correctness reference of the CUDA path.

The prefill scan is chunked: inside a chunk of ``chunk_size`` steps the linear
recurrence h_t = a_t * h_{t-1} + b_t is solved with a log-depth prefix scan (only
products of decays <= 1, so no overflow, unlike the exp(L_t - L_s) trick, which would
need exp(+sum dt*|A|)); chunks are chained through their last state so memory stays
O(batch * chunk * d_inner * d_state) whatever the prompt length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation in ("silu", "swish"):
        return F.silu(x)
    if activation is None:
        return x
    raise ValueError(f"unsupported conv activation {activation!r}")


def causal_conv1d_fn(x, weight, bias=None, activation=None):
    """Depthwise causal conv. x (batch, dim, seqlen), weight (dim, width) -> (batch, dim, seqlen)."""
    width = weight.shape[-1]
    out = F.conv1d(x, weight.unsqueeze(1), bias, padding=width - 1, groups=x.shape[1])
    return _activate(out[..., : x.shape[-1]], activation)


def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None):
    """One conv step. x (batch, dim); conv_state (batch, dim, width) is shifted in place."""
    conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
    conv_state[:, :, -1] = x
    out = (conv_state * weight).sum(-1)
    if bias is not None:
        out = out + bias
    return _activate(out, activation).to(x.dtype)


def _prefix_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of (a, b) pairs along dim 1 under (a1,b1)∘(a2,b2) = (a1 a2, a2 b1 + b2)."""
    steps = a.shape[1]
    offset = 1
    while offset < steps:
        b = torch.cat([b[:, :offset], b[:, offset:] + a[:, offset:] * b[:, :-offset]], dim=1)
        a = torch.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], dim=1)
        offset *= 2
    return a, b


def selective_scan_fn(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    *,
    chunk_size: int = 64,
    initial_state=None,
):
    """Mamba-1 selective scan with grouped B/C.

    u, delta, z: (batch, dim, seqlen); A: (dim, dstate); B, C: (batch, groups, dstate, seqlen)
    where channel c uses group c // (dim // groups); D, delta_bias: (dim,). Returns y
    (batch, dim, seqlen) in u's dtype, and the final state (batch, dim, dstate) in fp32
    when ``return_last_state``. Arithmetic is fp32 like the CUDA kernel.

    ``initial_state`` (batch, dim, dstate), an m1eval extension (mamba_ssm's public function
    starts from zeros): the state a chunked prefill or a prefix-cache hit resumes from.
    """
    if B.dim() != 4 or C.dim() != 4:
        raise ValueError("this reference supports input-dependent (variable) B and C only")
    in_dtype = u.dtype
    batch, dim, seqlen = u.shape
    groups, dstate = B.shape[1], B.shape[2]
    per_group = dim // groups
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    # time-major, channels split into (group, channel-in-group)
    u_t = u.float().transpose(1, 2).reshape(batch, seqlen, groups, per_group)
    dt_t = delta.transpose(1, 2).reshape(batch, seqlen, groups, per_group)
    A_g = A.float().reshape(groups, per_group, dstate)
    B_t = B.float().permute(0, 3, 1, 2).unsqueeze(3)  # (batch, seqlen, groups, 1, dstate)
    C_t = C.float().permute(0, 3, 1, 2).unsqueeze(3)
    if initial_state is None:
        state = u.new_zeros(batch, groups, per_group, dstate, dtype=torch.float32)
    else:
        state = initial_state.float().reshape(batch, groups, per_group, dstate)
    outputs = []
    for start in range(0, seqlen, chunk_size):
        stop = min(start + chunk_size, seqlen)
        dt_c = dt_t[:, start:stop]
        decay = torch.exp(dt_c.unsqueeze(-1) * A_g)
        drive = (dt_c * u_t[:, start:stop]).unsqueeze(-1) * B_t[:, start:stop]
        decay_cum, drive_cum = _prefix_scan(decay, drive)
        states = decay_cum * state.unsqueeze(1) + drive_cum
        outputs.append((states * C_t[:, start:stop]).sum(-1))
        state = states[:, -1]
    y = torch.cat(outputs, dim=1).reshape(batch, seqlen, dim).transpose(1, 2)
    if D is not None:
        y = y + u.float() * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(in_dtype)
    if return_last_state:
        return y, state.reshape(batch, dim, dstate)
    return y


def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """One recurrence step, updating ``state`` in place; mamba_ssm's multi-head layout.

    state (batch, heads, dim, dstate); x, dt, z (batch, heads, dim); A (heads, dim, dstate);
    B, C (batch, groups, dstate) with heads a multiple of groups; D, dt_bias (heads, dim).
    The 3-d layout without a heads axis is accepted too, as in mamba_ssm.
    """
    if state.dim() == 3:
        out = selective_state_update(
            state.unsqueeze(1), x.unsqueeze(1), dt.unsqueeze(1), A.unsqueeze(0), B.unsqueeze(1), C.unsqueeze(1),
            None if D is None else D.unsqueeze(0), None if z is None else z.unsqueeze(1),
            None if dt_bias is None else dt_bias.unsqueeze(0), dt_softplus,
        )  # fmt: skip
        return out.squeeze(1)
    heads, groups = state.shape[1], B.shape[1]
    dt = dt.float()
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    B = B.float().repeat_interleave(heads // groups, dim=1).unsqueeze(2)  # (batch, heads, 1, dstate)
    C = C.float().repeat_interleave(heads // groups, dim=1).unsqueeze(2)
    new_state = state.float() * torch.exp(dt.unsqueeze(-1) * A.float()) + (dt * x.float()).unsqueeze(-1) * B
    state.copy_(new_state)
    out = (new_state * C).sum(-1)
    if D is not None:
        out = out + x.float() * D.float()
    if z is not None:
        out = out * F.silu(z.float())
    return out.to(x.dtype)
