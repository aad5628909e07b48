"""The plugin's torch ops over a vLLM-style state cache, without vLLM's engine: resuming equals one pass.

A prompt prefilled in two chunks (the second continuing from the slot's conv and SSM state,
``has_initial_state``) must give what one pass over the whole prompt gives, and decode steps
must continue it exactly; this is what chunked prefill and prefix-cache hits rely on.
"""

from __future__ import annotations

import pytest
import torch

from m1eval.hybrid import scan
from m1eval.hybrid.vllm_plugin import hf_overrides, unsupported_vllm
from m1eval.hybrid.vllm_plugin.ops import (
    MambaPathError,
    resolve_ops,
    torch_conv_decode,
    torch_conv_prefill,
    torch_scan_decode,
    torch_scan_prefill,
)

DIM, WIDTH, DSTATE, GROUPS = 8, 4, 4, 2


def _inputs(tokens: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=gen)
    return {"u": r(DIM, tokens), "delta": r(DIM, tokens), "B": r(GROUPS, DSTATE, tokens), "C": r(GROUPS, DSTATE, tokens),
            "z": r(DIM, tokens)}  # fmt: skip


def _params(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return {"A": -torch.rand(DIM, DSTATE, generator=gen), "D": torch.randn(DIM, generator=gen),
            "delta_bias": torch.randn(DIM, generator=gen)}  # fmt: skip


def _spans(*bounds):
    return torch.tensor(bounds, dtype=torch.int32)


def test_scan_prefill_in_two_chunks_equals_one_pass():
    x, p = _inputs(12), _params()
    slots = torch.zeros(3, DIM, DSTATE)
    whole = torch_scan_prefill(x["u"], slots, x["delta"], p["A"], x["B"], x["C"], p["D"], x["z"], p["delta_bias"], True,
                               query_start_loc=_spans(0, 12), cache_indices=torch.tensor([2]),
                               has_initial_state=torch.tensor([False]))  # fmt: skip
    chunked = torch.zeros(3, DIM, DSTATE)
    parts = []
    for (start, stop), resume in (((0, 5), False), ((5, 12), True)):
        cut = {k: v[..., start:stop] for k, v in x.items()}
        parts.append(torch_scan_prefill(cut["u"], chunked, cut["delta"], p["A"], cut["B"], cut["C"], p["D"], cut["z"],
                                        p["delta_bias"], True, query_start_loc=_spans(0, stop - start),
                                        cache_indices=torch.tensor([2]), has_initial_state=torch.tensor([resume])))  # fmt: skip
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked[2], slots[2], rtol=1e-5, atol=1e-6)
    assert slots[0].abs().sum() == 0 and slots[1].abs().sum() == 0  # only the request's slot is written


def test_two_prompts_back_to_back_equal_each_alone():
    x, p = _inputs(9, seed=3), _params()
    both = torch.zeros(4, DIM, DSTATE)
    y = torch_scan_prefill(x["u"], both, x["delta"], p["A"], x["B"], x["C"], p["D"], x["z"], p["delta_bias"], True,
                           query_start_loc=_spans(0, 4, 9), cache_indices=torch.tensor([3, 1]),
                           has_initial_state=torch.tensor([False, False]))  # fmt: skip
    for (start, stop), slot in (((0, 4), 3), ((4, 9), 1)):
        ref, last = scan.selective_scan_fn(
            x["u"][None, :, start:stop], x["delta"][None, :, start:stop], p["A"], x["B"][None, ..., start:stop],
            x["C"][None, ..., start:stop], p["D"], z=x["z"][None, :, start:stop], delta_bias=p["delta_bias"],
            delta_softplus=True, return_last_state=True,
        )  # fmt: skip
        torch.testing.assert_close(y[:, start:stop], ref[0])
        torch.testing.assert_close(both[slot], last[0])


def test_conv_prefill_resume_and_decode_continue_one_pass():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(DIM, 10, generator=gen)
    weight, bias = torch.randn(DIM, WIDTH, generator=gen), torch.randn(DIM, generator=gen)
    reference = scan.causal_conv1d_fn(x[None], weight, bias, "silu")[0]
    states = torch.zeros(2, WIDTH - 1, DIM).transpose(-1, -2)  # vLLM's "SD" storage seen as (slots, dim, width-1)
    first = torch_conv_prefill(x[:, :3], weight, bias, states, _spans(0, 3), torch.tensor([1]), torch.tensor([False]))
    second = torch_conv_prefill(x[:, 3:8], weight, bias, states, _spans(0, 5), torch.tensor([1]), torch.tensor([True]))
    steps = [torch_conv_decode(x[:, t][None], states, weight, bias, "silu", torch.tensor([[1]]))[0] for t in (8, 9)]
    torch.testing.assert_close(torch.cat([first, second, torch.stack(steps, dim=-1)], dim=-1), reference)


def test_scan_decode_continues_the_prefill_state():
    x, p = _inputs(6, seed=5), _params()
    heads, width = GROUPS, DIM // GROUPS
    ref = scan.selective_scan_fn(x["u"][None], x["delta"][None], p["A"], x["B"][None], x["C"][None], p["D"],
                                 z=x["z"][None], delta_bias=p["delta_bias"], delta_softplus=True)[0]  # fmt: skip
    slots = torch.zeros(2, DIM, DSTATE)
    cut = {k: v[..., :5] for k, v in x.items()}
    torch_scan_prefill(cut["u"], slots, cut["delta"], p["A"], cut["B"], cut["C"], p["D"], cut["z"], p["delta_bias"], True,
                       query_start_loc=_spans(0, 5), cache_indices=torch.tensor([1]),
                       has_initial_state=torch.tensor([False]))  # fmt: skip
    out = torch.empty(1, heads, width)
    view = lambda t: t[:, 5].reshape(1, heads, width)
    torch_scan_decode(slots.view(2, heads, width, DSTATE), view(x["u"]), view(x["delta"]),
                      p["A"].view(heads, width, DSTATE), x["B"][:, :, 5][None], x["C"][:, :, 5][None],
                      p["D"].view(heads, width), p["delta_bias"].view(heads, width), z=view(x["z"]), dt_softplus=True,
                      state_batch_indices=torch.tensor([[1]]), dst_state_batch_indices=torch.tensor([[1]]), out=out)  # fmt: skip
    torch.testing.assert_close(out.reshape(DIM), ref[:, 5], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("version", "ok"), [("0.32.0", True), ("0.32.3+cpu", True), ("0.31.1", False),
                                             ("0.33.0", False), (None, False)])  # fmt: skip
def test_supported_vllm_versions(version, ok):
    reason = unsupported_vllm(version)
    assert (reason is None) == ok
    if reason is not None:
        assert "\n" not in reason and ("0.32.x" in reason or "not installed" in reason)


def test_unknown_path_is_refused():
    with pytest.raises(MambaPathError, match="must be one of"):
        resolve_ops("fast")


def test_overrides_name_the_plugin_and_the_layout(tmp_path):
    from m1eval.models.tiny_hybrid import build_tiny_hybrid

    folder = build_tiny_hybrid(tmp_path / "m1", d_model=64, n_layer=3, attn_layers=(2,))
    overrides = hf_overrides(folder, "torch")
    assert overrides["architectures"] == ["M1ForCausalLM"] and overrides["m1eval_mamba_path"] == "torch"
    assert overrides["layers_block_type"] == ["mamba", "mamba", "attention"]
