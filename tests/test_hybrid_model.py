"""The hybrid model: cache-based decoding, padding, checkpoint loading (tiny random configs)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from m1eval.hybrid import CheckpointError, HybridConfigError, load_config, load_hybrid
from m1eval.models.tiny_hybrid import build_tiny_hybrid


@pytest.fixture(scope="module", params=[64, 128], ids=["d64", "d128"])
def checkpoint(request, tmp_path_factory):
    return build_tiny_hybrid(tmp_path_factory.mktemp(f"hybrid{request.param}"), d_model=request.param)


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_hybrid(checkpoint)


def _ids(batch, seqlen, vocab, seed=0):
    return torch.randint(8, vocab, (batch, seqlen), generator=torch.Generator().manual_seed(seed))


def test_layout_follows_mamba_config(model):
    kinds = ["mha" if hasattr(layer, "mha") else "mamba" for layer in model.model.layers]
    assert kinds == ["mamba", "mha", "mamba", "mha"]
    assert model.config.attn_layers == (1, 3)


@torch.no_grad()
def test_prefill_then_decode_equals_full_forward(model):
    ids = _ids(3, 20, model.config.vocab_size)
    full = model(ids).logits
    assert full.shape == (3, 20, model.config.vocab_size)
    cache = model.allocate_cache(3, 8)  # grows while decoding
    prefill = model(ids[:, :7], cache=cache).logits
    torch.testing.assert_close(prefill, full[:, :7], rtol=0, atol=1e-5)
    steps = []
    for t in range(7, 20):
        cache.reserve(t + 1)
        steps.append(model.decode_step(ids[:, t], cache.positions, torch.tensor(t), cache, kv_len=t + 1))
        cache.positions += 1
        cache.length += 1
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 7:], rtol=0, atol=1e-5)


@torch.no_grad()
def test_full_capacity_step_matches_sliced_step(model):
    """The CUDA-graph form (attend over the whole cache, kv_len=None) equals the eager form."""
    ids = _ids(2, 9, model.config.vocab_size, seed=3)
    outs = []
    for kv_len in (9, None):
        cache = model.allocate_cache(2, 16)
        model(ids[:, :8], cache=cache)
        outs.append(model.decode_step(ids[:, 8], cache.positions, torch.tensor(8), cache, kv_len=kv_len))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-5)


@torch.no_grad()
def test_left_padding_is_invisible(model):
    vocab = model.config.vocab_size
    short, long = _ids(1, 5, vocab, seed=1), _ids(1, 11, vocab, seed=2)
    ids = torch.zeros(2, 11, dtype=torch.long)
    ids[0, 6:], ids[1] = short[0], long[0]
    mask = torch.zeros(2, 11, dtype=torch.long)
    mask[0, 6:], mask[1] = 1, 1
    batched = model(ids, mask).logits
    torch.testing.assert_close(batched[0, 6:], model(short).logits[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(batched[1], model(long).logits[0], rtol=0, atol=1e-5)
    assert torch.isfinite(batched).all()


def test_checkpoint_round_trips_with_exact_m1_names(checkpoint, model, tmp_path):
    written = load_file(str(checkpoint / "model.safetensors"))
    assert set(model.state_dict()) == set(written)  # no missing, no unexpected
    assert "model.layers.0.mamba.A_log" in written and "model.layers.1.mha.in_proj.weight" in written
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, written[name]), name
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    for name in ("config.json", "mamba_config.json"):
        (tmp_path / name).write_text((checkpoint / name).read_text())
    again = load_hybrid(tmp_path)
    ids = _ids(1, 6, model.config.vocab_size)
    torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_torch_bin_checkpoint_loads(checkpoint, tmp_path):
    state = load_file(str(checkpoint / "model.safetensors"))
    torch.save(state, tmp_path / "pytorch_model.bin")
    for name in ("config.json", "mamba_config.json"):
        (tmp_path / name).write_text((checkpoint / name).read_text())
    assert load_hybrid(tmp_path, dtype=torch.bfloat16).lm_head.weight.dtype == torch.bfloat16


def _copy_with(checkpoint, folder, edit):
    state = load_file(str(checkpoint / "model.safetensors"))
    edit(state)
    save_file(state, str(folder / "model.safetensors"))
    for name in ("config.json", "mamba_config.json"):
        (folder / name).write_text((checkpoint / name).read_text())
    return folder


def test_missing_and_unexpected_keys_are_errors(checkpoint, tmp_path):
    def rename(state):
        state["model.layers.0.mixer.A_log"] = state.pop("model.layers.0.mamba.A_log")

    with pytest.raises(CheckpointError, match=r"missing key.*mamba\.A_log.*unexpected key.*mixer\.A_log"):
        load_hybrid(_copy_with(checkpoint, tmp_path, rename))


def test_wrong_shape_is_an_error(checkpoint, tmp_path):
    def shrink(state):
        state["model.layers.0.mamba.D"] = state["model.layers.0.mamba.D"][:-1].clone()

    with pytest.raises(CheckpointError, match=r"mamba\.D has shape"):
        load_hybrid(_copy_with(checkpoint, tmp_path, shrink))


def test_config_errors_name_the_file(checkpoint, tmp_path):
    for name in ("config.json", "mamba_config.json"):
        (tmp_path / name).write_text((checkpoint / name).read_text())
    mamba = json.loads((tmp_path / "mamba_config.json").read_text())
    mamba["d_xb"] = None
    (tmp_path / "mamba_config.json").write_text(json.dumps(mamba))
    with pytest.raises(HybridConfigError, match=r"mamba_config.json: 'd_xb' is null"):
        load_config(tmp_path)
    mamba["d_xb"], mamba["ssm_cfg"]["ngroups"] = 64, 4
    (tmp_path / "mamba_config.json").write_text(json.dumps(mamba))
    with pytest.raises(HybridConfigError, match="unsupported ssm_cfg key"):
        load_config(tmp_path)
    with pytest.raises(HybridConfigError, match="not found"):
        load_config(tmp_path / "nowhere")


def test_tied_embeddings_need_no_lm_head(checkpoint, tmp_path):
    folder = _copy_with(checkpoint, tmp_path, lambda state: state.pop("lm_head.weight"))
    llama = json.loads((folder / "config.json").read_text())
    llama["tie_word_embeddings"] = True
    (folder / "config.json").write_text(json.dumps(llama))
    tied = load_hybrid(folder)
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
