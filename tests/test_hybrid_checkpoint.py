"""The published M1 checkpoint format: every weight layout, bf16/fp32, and the config quirks.

The published MambaInLlama/M1 code writes ``mamba_config.json`` from its config object's
``__dict__``: ``"vocab_size": null`` (the vocabulary is config.json's), often
``"d_inner": null``, and older files lack keys the class defaults. Each test writes a
folder in one layout or with one quirk and checks that it loads strictly (or fails with
an error naming the right file and key).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from m1eval.hybrid import CheckpointError, HybridConfigError, load_config, load_hybrid
from m1eval.hybrid.config import PUBLISHED_MAMBA_DEFAULTS
from m1eval.models.tiny_hybrid import build_tiny_hybrid


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return build_tiny_hybrid(tmp_path_factory.mktemp("m1src"), d_model=64, n_layer=4, attn_layers=(1,))


@pytest.fixture(scope="module")
def reference(source):
    return load_hybrid(source)


def _ids(vocab: int) -> torch.Tensor:
    return torch.randint(8, vocab, (2, 7), generator=torch.Generator().manual_seed(3))


def _configs(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "mamba_config.json"):
        shutil.copy(source / name, folder / name)
    return folder


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _write_layout(state: dict[str, torch.Tensor], folder: Path, layout: str) -> None:
    """Write ``state`` as save_pretrained would: one file, or shards with an index."""
    names = sorted(state)
    if layout == "safetensors":
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    elif layout == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        suffix = "safetensors" if layout == "sharded-safetensors" else "bin"
        prefix = "model" if suffix == "safetensors" else "pytorch_model"
        shards = [names[0::3], names[1::3], names[2::3]]
        weight_map = {}
        for i, keys in enumerate(shards, start=1):
            shard = f"{prefix}-{i:05d}-of-{len(shards):05d}.{suffix}"
            part = {k: state[k] for k in keys}
            if suffix == "safetensors":
                save_file(part, str(folder / shard), metadata={"format": "pt"})
            else:
                torch.save(part, folder / shard)
            weight_map.update(dict.fromkeys(keys, shard))
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": weight_map}  # fmt: skip
        (folder / f"{prefix}.{suffix}.index.json").write_text(json.dumps(index))


LAYOUTS = ["safetensors", "bin", "sharded-safetensors", "sharded-bin"]


@pytest.mark.parametrize("stored", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_loads_strictly_with_the_same_logits(source, reference, tmp_path, layout, stored):
    state = {k: v.to(stored) for k, v in load_file(str(source / "model.safetensors")).items()}
    folder = _configs(source, tmp_path / layout)
    _write_layout(state, folder, layout)
    model = load_hybrid(folder)  # fp32 on CPU, whatever the stored dtype
    assert model.lm_head.weight.dtype == torch.float32
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name].float()), name
    if stored == torch.float32:
        ids = _ids(model.config.vocab_size)
        torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=0, atol=0)
    assert load_hybrid(folder, dtype=torch.bfloat16).model.norm.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("layout", ["sharded-safetensors", "sharded-bin"])
def test_a_sharded_checkpoint_stays_strict(source, tmp_path, layout):
    state = load_file(str(source / "model.safetensors"))
    folder = _configs(source, tmp_path / "drop")
    dropped = dict(state)
    dropped.pop("model.layers.0.mamba.dt_proj.bias")
    _write_layout(dropped, folder, layout)
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\) \['model.layers.0.mamba.dt_proj.bias'\]"):
        load_hybrid(folder)

    folder = _configs(source, tmp_path / "lost")
    _write_layout(state, folder, layout)
    index = next(folder.glob("*.index.json"))
    shard = sorted(set(json.loads(index.read_text())["weight_map"].values()))[1]
    (folder / shard).unlink()
    with pytest.raises(CheckpointError, match=rf"{shard}: listed in the index but not found"):
        load_hybrid(folder)

    index.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(CheckpointError, match=rf"{index.name}: no 'weight_map'"):
        load_hybrid(folder)


def test_a_key_in_two_shards_and_no_weights_are_errors(source, tmp_path):
    state = load_file(str(source / "model.safetensors"))
    folder = _configs(source, tmp_path / "dup")
    _write_layout(state, folder, "sharded-safetensors")
    index = folder / "model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"]
    second = next(shard for shard in sorted(set(weight_map.values())) if shard != weight_map["model.norm.weight"])
    part = load_file(str(folder / second))
    part["model.norm.weight"] = state["model.norm.weight"]
    save_file(part, str(folder / second))
    with pytest.raises(CheckpointError, match="already loaded from another shard.*model.norm.weight"):
        load_hybrid(folder)
    empty = _configs(source, tmp_path / "empty")
    (empty / "training_args.bin").write_bytes(b"not weights")  # a stray .bin is not a checkpoint
    with pytest.raises(CheckpointError, match="no weights found.*model.safetensors"):
        load_hybrid(empty)


def _quirk_folder(source: Path, folder: Path, edit) -> Path:
    _configs(source, folder)
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    _edit_json(folder / "mamba_config.json", edit)
    return folder


def test_published_dict_dump_with_null_vocab_and_d_inner_loads(source, reference, tmp_path):
    """The file the published class writes: every field, vocab_size and d_inner null."""

    def published(data):
        ssm = {"expand": 1, "d_state": 16, "d_conv": 4}  # the distillation recipe's ssm_cfg
        data.clear()
        data.update({**PUBLISHED_MAMBA_DEFAULTS, "d_model": 64, "ssm_cfg": ssm, "d_xb": 64,
                     "intermediate_size": 128, "n_layer": 4, "attn_layers": [1],
                     "vocab_size": None, "d_inner": None})  # fmt: skip

    folder = _quirk_folder(source, tmp_path / "published", published)
    config = load_config(folder)
    assert (config.vocab_size, config.d_inner) == (reference.config.vocab_size, 64)
    model = load_hybrid(folder)
    ids = _ids(config.vocab_size)
    torch.testing.assert_close(model(ids).logits, reference(ids).logits, rtol=0, atol=0)


def test_absent_keys_take_the_published_defaults(source, reference, tmp_path):
    def older(data):
        for key in ("rms_norm_eps", "hidden_act", "vocab_size"):
            del data[key]
        data["ssm_cfg"] = {"expand": 1}  # d_state / d_conv from the Mamba layer's defaults (16, 4)

    folder = _quirk_folder(source, tmp_path / "older", older)
    config = load_config(folder)
    assert (config.rms_norm_eps, config.hidden_act, config.d_state, config.d_conv) == (1e-5, "silu", 16, 4)
    ids = _ids(config.vocab_size)
    torch.testing.assert_close(load_hybrid(folder)(ids).logits, reference(ids).logits, rtol=0, atol=0)

    def bare(data):
        for key in ("d_inner", "ssm_cfg", "attn_layers"):
            del data[key]

    config = load_config(_quirk_folder(source, tmp_path / "bare", bare))
    # no d_inner and no ssm_cfg: the Mamba layer's expand=2; no attn_layers: every layer is Mamba
    assert (config.d_inner, config.attn_layers) == (128, ())


def test_null_vocab_with_no_vocab_in_config_json_names_config_json(source, tmp_path):
    folder = _quirk_folder(source, tmp_path / "novocab", lambda data: data.update(vocab_size=None))
    _edit_json(folder / "config.json", lambda data: data.pop("vocab_size"))
    with pytest.raises(HybridConfigError, match=r"config.json: missing key 'vocab_size' \(mamba_config.json has "
                                                r"\"vocab_size\": null"):  # fmt: skip
        load_config(folder)
    _edit_json(folder / "config.json", lambda data: data.update(vocab_size=None))
    with pytest.raises(HybridConfigError, match=r"config.json: 'vocab_size' is null"):
        load_config(folder)


def test_config_errors_name_file_key_and_default(source, tmp_path):
    folder = _quirk_folder(source, tmp_path / "noxb", lambda data: data.pop("d_xb"))
    with pytest.raises(
        HybridConfigError,
        match=r"mamba_config.json: d_inner=64 is not a multiple of d_xb=2560 "
        r"\(absent keys took the published MambaConfig defaults: d_xb\)",
    ):
        load_config(folder)

    folder = _quirk_folder(source, tmp_path / "nomlp", lambda data: data.pop("intermediate_size"))
    with pytest.raises(
        HybridConfigError,
        match=r"mamba_config.json: intermediate_size=10240 \(absent: the published "
        r"MambaConfig default\) but .*config.json intermediate_size=128",
    ):
        load_config(folder)

    folder = _quirk_folder(source, tmp_path / "layers", lambda data: data.update(n_layer=6))
    with pytest.raises(HybridConfigError, match=r"n_layer=6 but .*config.json num_hidden_layers=4"):
        load_config(folder)

    folder = _quirk_folder(source, tmp_path / "nullxb", lambda data: data.update(d_xb=None))
    with pytest.raises(HybridConfigError, match=r"mamba_config.json: 'd_xb' is null"):
        load_config(folder)

    folder = _quirk_folder(source, tmp_path / "heads", lambda data: None)
    _edit_json(folder / "config.json", lambda data: data.pop("num_attention_heads"))
    with pytest.raises(HybridConfigError, match=r"config.json: missing key 'num_attention_heads'"):
        load_config(folder)

    folder = _quirk_folder(source, tmp_path / "vocab", lambda data: data.update(vocab_size=7))
    with pytest.raises(HybridConfigError, match=r"mamba_config.json: vocab_size=7 but .*config.json vocab_size="):
        load_config(folder)
