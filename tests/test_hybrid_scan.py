"""The PyTorch Mamba ops against recurrences written out step by step here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from m1eval.hybrid import scan


def naive_scan(u, delta, A, B, C, D, z, delta_bias):
    """h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t ; y_t = C_t h_t + D x_t, gated by silu(z), one t at a time."""
    batch, dim, seqlen = u.shape
    groups = B.shape[1]
    per = dim // groups
    dt = F.softplus(delta + delta_bias[:, None])
    h = torch.zeros(batch, dim, A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(seqlen):
        Bt = B[:, :, :, t].repeat_interleave(per, dim=1)  # channel c uses group c // per
        Ct = C[:, :, :, t].repeat_interleave(per, dim=1)
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * Bt
        ys.append((h * Ct).sum(-1) + D * u[:, :, t])
    y = torch.stack(ys, dim=-1) * F.silu(z)
    return y, h


def _inputs(batch=2, dim=32, groups=4, dstate=16, seqlen=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    A = -torch.exp(r(dim, dstate) * 0.5 + 0.5)
    return {
        "u": r(batch, dim, seqlen),
        "delta": r(batch, dim, seqlen) - 1,
        "A": A,
        "B": r(batch, groups, dstate, seqlen),
        "C": r(batch, groups, dstate, seqlen),
        "D": r(dim),
        "z": r(batch, dim, seqlen),
        "delta_bias": r(dim) * 0.1,
    }


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])
@pytest.mark.parametrize("groups", [1, 4, 32])
def test_chunked_scan_equals_naive_recurrence(chunk, groups):
    x = _inputs(groups=groups)
    want_y, want_h = naive_scan(**x)
    y, h = scan.selective_scan_fn(**x, delta_softplus=True, return_last_state=True, chunk_size=chunk)
    # the reference computes in fp32, like the CUDA kernel
    torch.testing.assert_close(y.double(), want_y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h.double(), want_h, rtol=1e-4, atol=1e-4)
    assert y.dtype == torch.float64 and h.dtype == torch.float32


def test_scan_without_state_returns_tensor_and_rejects_fixed_B():
    x = _inputs(seqlen=3)
    assert isinstance(scan.selective_scan_fn(**x, delta_softplus=True), torch.Tensor)
    with pytest.raises(ValueError, match="variable"):
        scan.selective_scan_fn(x["u"], x["delta"], x["A"], x["A"], x["A"])


def test_state_update_continues_the_scan():
    """Scanning T-1 steps and then one state update equals scanning T steps."""
    x = _inputs(seqlen=9, groups=2)
    want_y, want_h = naive_scan(**x)
    _, h = scan.selective_scan_fn(**{k: (v[..., :-1] if v.dim() >= 3 else v) for k, v in x.items()},
                                  delta_softplus=True, return_last_state=True)  # fmt: skip
    batch, dim, dstate = h.shape
    heads = 2
    state = h.view(batch, heads, dim // heads, dstate).clone()
    hp = lambda t: t[..., -1].reshape(batch, heads, dim // heads)
    y = scan.selective_state_update(state, hp(x["u"]), hp(x["delta"]), x["A"].view(heads, dim // heads, dstate),
                                    x["B"][..., -1], x["C"][..., -1], x["D"].view(heads, -1), z=hp(x["z"]),
                                    dt_bias=x["delta_bias"].view(heads, -1), dt_softplus=True)  # fmt: skip
    torch.testing.assert_close(y.reshape(batch, dim).double(), want_y[..., -1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(state.reshape(batch, dim, dstate).double(), want_h, rtol=1e-4, atol=1e-4)


def test_conv_update_equals_causal_conv():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 10, generator=g)
    weight, bias = torch.randn(8, 4, generator=g), torch.randn(8, generator=g)
    # written out: out[t] = sum_k w[k] * x[t - 3 + k], zeros before the start
    padded = F.pad(x, (3, 0))
    want = F.silu(sum(weight[None, :, k, None] * padded[:, :, k : k + 10] for k in range(4)) + bias[None, :, None])
    torch.testing.assert_close(scan.causal_conv1d_fn(x, weight, bias, activation="silu"), want)
    state = torch.zeros(2, 8, 4)
    steps = torch.stack([scan.causal_conv1d_update(x[:, :, t], state, weight, bias, "silu") for t in range(10)], -1)
    torch.testing.assert_close(steps, want)
    with pytest.raises(ValueError, match="activation"):
        scan.causal_conv1d_fn(x, weight, bias, activation="tanh")
