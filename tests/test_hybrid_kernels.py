"""Dispatch to the CUDA kernels, checked on CPU with stand-ins that have the kernels' signatures.

The stand-ins take exactly mamba_ssm 2.x / causal_conv1d's parameters (no **kwargs, so a
misnamed keyword fails), assert the layouts and dtypes those kernels require, record the
call, and compute with the PyTorch reference. No GPU exists here; the real kernels are
only mocked because they cannot run on this machine.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from m1eval.hybrid import kernels, load_hybrid, scan
from m1eval.hybrid.generation import generate
from m1eval.models.tiny_hybrid import build_tiny_hybrid

CALLS: list[tuple[str, dict]] = []


def fake_selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                           return_last_state=False):  # fmt: skip
    batch, dim, seqlen = u.shape
    assert delta.shape == z.shape == (batch, dim, seqlen)
    assert A.dtype == torch.float32 and A.shape[0] == dim
    assert B.dim() == 4 and B.shape[:1] + B.shape[2:] == (batch, A.shape[1], seqlen)
    assert C.shape == B.shape, "the kernel needs B and C with the same number of groups"
    assert dim % B.shape[1] == 0 and D.shape == delta_bias.shape == (dim,)
    CALLS.append(("scan", {"groups": B.shape[1], "softplus": delta_softplus, "last": return_last_state}))
    return scan.selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def fake_selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    batch, heads, dim, dstate = state.shape
    assert x.shape == dt.shape == z.shape == (batch, heads, dim)
    assert A.shape == (heads, dim, dstate) and D.shape == dt_bias.shape == (heads, dim)
    assert B.shape == C.shape and B.shape[0] == batch and B.shape[2] == dstate and heads % B.shape[1] == 0
    assert state.is_contiguous()
    CALLS.append(("state_update", {"heads": heads, "softplus": dt_softplus}))
    return scan.selective_state_update(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)


def fake_causal_conv1d_fn(x, weight, bias=None, activation=None):
    assert x.dim() == 3 and weight.shape == (x.shape[1], weight.shape[1]) and activation == "silu"
    assert x.stride(2) == 1 or x.stride(1) == 1
    CALLS.append(("conv", {"dim": x.shape[1], "width": weight.shape[1]}))
    return scan.causal_conv1d_fn(x, weight, bias, activation)


def fake_causal_conv1d_update(x, conv_state, weight, bias=None, activation=None):
    assert x.shape == conv_state.shape[:2] and conv_state.shape[2] >= weight.shape[1] - 1
    CALLS.append(("conv_update", {"dim": x.shape[1]}))
    return scan.causal_conv1d_update(x, conv_state, weight, bias, activation)


FAKES = {
    "selective_scan_fn": fake_selective_scan_fn,
    "selective_state_update": fake_selective_state_update,
    "causal_conv1d_fn": fake_causal_conv1d_fn,
    "causal_conv1d_update": fake_causal_conv1d_update,
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_hybrid(build_tiny_hybrid(tmp_path_factory.mktemp("kern"), d_model=128))


@pytest.fixture
def fake_kernels(monkeypatch):
    for name, fn in FAKES.items():
        monkeypatch.setitem(kernels._loaded, name, fn)
    CALLS.clear()
    yield
    CALLS.clear()


def test_kernel_path_calls_every_kernel_with_their_layouts(model, fake_kernels):
    prompts = [[5, 6, 7, 8, 9, 10], [20, 21, 22]]
    with kernels.kernel_mode("torch"):
        reference = generate(model, prompts, max_new_tokens=6)
    assert CALLS == []
    with kernels.kernel_mode("kernels"):
        routed = generate(model, prompts, max_new_tokens=6)
    assert routed.tokens == reference.tokens
    kinds = [name for name, _ in CALLS]
    mamba_layers = len(model.config.mamba_layers)
    assert kinds.count("scan") == kinds.count("conv") == mamba_layers  # one prefill
    assert kinds.count("state_update") == kinds.count("conv_update") == 5 * mamba_layers  # 5 decode steps
    c = model.config
    assert dict(CALLS)["scan"] == {"groups": c.d_inner // c.d_state, "softplus": True, "last": True}
    assert dict(CALLS)["state_update"] == {"heads": c.d_inner // c.d_state, "softplus": True}
    assert dict(CALLS)["conv"] == {"dim": c.d_inner, "width": c.d_conv}


def test_auto_mode_uses_pytorch_on_cpu(model, fake_kernels):
    with kernels.kernel_mode("auto"), warnings.catch_warnings():
        warnings.simplefilter("error")
        generate(model, [[5, 6, 7]], max_new_tokens=3)
    assert CALLS == []


def test_missing_kernels_fall_back_with_one_warning(model, monkeypatch):
    for name in kernels.SOURCES:
        monkeypatch.setitem(kernels._loaded, name, None)
    kernels.reset_warning()
    with kernels.kernel_mode("torch"):
        reference = generate(model, [[5, 6, 7]], max_new_tokens=4)
    with kernels.kernel_mode("kernels"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = generate(model, [[5, 6, 7]], max_new_tokens=4)
        generate(model, [[8, 9]], max_new_tokens=2)
    assert fallback.tokens == reference.tokens
    ours = [w for w in caught if issubclass(w.category, RuntimeWarning) and "Mamba CUDA kernels" in str(w.message)]
    assert len(ours) == 1
    assert "selective_scan_fn" in str(ours[0].message) and "causal_conv1d_update" in str(ours[0].message)
    kernels.reset_warning()


def test_partial_kernels_mix_with_reference(model, fake_kernels, monkeypatch):
    monkeypatch.setitem(kernels._loaded, "causal_conv1d_fn", None)
    monkeypatch.setitem(kernels._loaded, "causal_conv1d_update", None)
    kernels.reset_warning()
    with kernels.kernel_mode("kernels"), pytest.warns(RuntimeWarning, match="causal_conv1d_fn"):
        generate(model, [[5, 6, 7]], max_new_tokens=3)
    assert {name for name, _ in CALLS} == {"scan", "state_update"}
    kernels.reset_warning()


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="kernel mode"):
        kernels.set_mode("fast")
