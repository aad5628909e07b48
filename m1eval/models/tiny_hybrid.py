"""A tiny random-weight M1-style checkpoint: config.json + mamba_config.json + safetensors.

Parameter names are written by hand from the published layout (not from our model's
state_dict), so a naming mistake in ``m1eval.hybrid`` shows up as missing/unexpected
keys when the folder is loaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from m1eval.models.tiny import build_tokenizer


def m1_parameter_shapes(*, vocab: int, d_model: int, n_layer: int, attn_layers, d_inner: int, d_xb: int,
                        d_state: int, d_conv: int, dt_rank: int, heads: int, kv_heads: int, head_dim: int,
                        intermediate: int) -> dict[str, tuple[int, ...]]:  # fmt: skip
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, d_model)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        if i in attn_layers:
            shapes[p + "mha.in_proj.weight"] = (head_dim * (heads + 2 * kv_heads), d_model)
            shapes[p + "mha.out_proj.weight"] = (d_model, heads * head_dim)
        else:
            shapes[p + "mamba.in_proj.weight"] = (2 * d_inner + 2 * d_xb + dt_rank, d_model)
            shapes[p + "mamba.conv1d.weight"] = (d_inner, 1, d_conv)
            shapes[p + "mamba.conv1d.bias"] = (d_inner,)
            shapes[p + "mamba.dt_proj.weight"] = (d_inner, dt_rank)
            shapes[p + "mamba.dt_proj.bias"] = (d_inner,)
            shapes[p + "mamba.A_log"] = (d_inner, d_state)
            shapes[p + "mamba.D"] = (d_inner,)
            shapes[p + "mamba.out_proj.weight"] = (d_model, d_inner)
        shapes[p + "mlp.gate_proj.weight"] = (intermediate, d_model)
        shapes[p + "mlp.up_proj.weight"] = (intermediate, d_model)
        shapes[p + "mlp.down_proj.weight"] = (d_model, intermediate)
        shapes[p + "input_layernorm.weight"] = (d_model,)
        shapes[p + "post_attention_layernorm.weight"] = (d_model,)
    shapes["model.norm.weight"] = (d_model,)
    shapes["lm_head.weight"] = (vocab, d_model)
    return shapes


def build_tiny_hybrid(folder: Path, *, d_model: int = 128, n_layer: int = 4, attn_layers=(1, 3), seed: int = 0) -> Path:
    """Write a random M1-shaped checkpoint (head_dim 64, d_xb = d_model / 2, d_state 16) to ``folder``."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    tokenizer = build_tokenizer(folder)
    vocab = len(tokenizer)
    head_dim, d_state, d_conv = 64, 16, 4
    heads = max(1, d_model // head_dim)
    kv_heads = 1
    d_inner, d_xb = d_model, kv_heads * head_dim
    dt_rank = math.ceil(d_model / 16)
    intermediate = 2 * d_model
    llama = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": d_model,
        "intermediate_size": intermediate, "num_hidden_layers": n_layer, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "max_position_embeddings": 131072, "tie_word_embeddings": False,
        "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, "torch_dtype": "float32",
        "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
    }  # fmt: skip
    mamba = {
        "d_model": d_model, "d_inner": d_inner, "d_xb": d_xb,
        "ssm_cfg": {"expand": 1, "d_state": d_state, "d_conv": d_conv},
        "attn_layers": list(attn_layers), "n_layer": n_layer, "intermediate_size": intermediate,
        "rms_norm_eps": 1e-5, "vocab_size": vocab, "hidden_act": "silu",
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(llama, indent=2))
    (folder / "mamba_config.json").write_text(json.dumps(mamba, indent=2))

    gen = torch.Generator().manual_seed(seed)
    shapes = m1_parameter_shapes(vocab=vocab, d_model=d_model, n_layer=n_layer, attn_layers=attn_layers,
                                 d_inner=d_inner, d_xb=d_xb, d_state=d_state, d_conv=d_conv, dt_rank=dt_rank,
                                 heads=heads, kv_heads=kv_heads, head_dim=head_dim, intermediate=intermediate)  # fmt: skip
    state = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            tensor = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("A_log"):
            tensor = torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1)
            tensor = tensor + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".D"):
            tensor = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("dt_proj.bias"):
            # dt around 0.001-0.1 after softplus, as mamba initialises it (here applied twice)
            tensor = torch.log(torch.expm1(torch.empty(shape).uniform_(1e-3, 1e-1, generator=gen))) / 2
        elif name.endswith(("conv1d.weight", "conv1d.bias")):
            tensor = 0.3 * torch.randn(shape, generator=gen)
        elif name == "model.embed_tokens.weight":
            tensor = torch.randn(shape, generator=gen)
        else:
            tensor = torch.randn(shape, generator=gen) / math.sqrt(shape[-1])
        state[name] = tensor.contiguous()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
