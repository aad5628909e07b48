"""The hybrid model's shape, read from an M1 / MambaInLlama checkpoint folder.

An M1 checkpoint carries two configs: ``config.json`` is the ordinary Llama config of
the model it was distilled from (heads, RoPE base, token ids) and ``mamba_config.json``
says which layers became Mamba and how wide the Mamba mixers are (``d_inner``, ``d_xb``,
``ssm_cfg``). Both are needed: the attention layers keep Llama's heads, the Mamba layers
are sized by the second file. Nothing here imports torch, so configs can be inspected
cheaply.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ssm_cfg keys that only matter when initialising or training (dt init ranges, fused
# paths); they do not change the inference computation, so they are accepted and ignored.
_SSM_INIT_ONLY = {"dt_min", "dt_max", "dt_init", "dt_scale", "dt_init_floor", "use_fast_path", "layer", "dt_limit"}
_SSM_USED = {"d_state", "d_conv", "expand", "dt_rank", "conv_bias", "bias", "repeat_kv_before_conv"}


class HybridConfigError(ValueError):
    """A checkpoint's configs are missing or inconsistent; the message names the file and key."""


@dataclass(frozen=True)
class HybridConfig:
    vocab_size: int
    d_model: int
    d_inner: int
    d_xb: int
    n_layer: int
    attn_layers: tuple[int, ...]
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    d_state: int = 16
    d_conv: int = 4
    dt_rank: int = 0  # 0 means "auto": ceil(d_model / 16), as mamba_ssm does
    conv_bias: bool = True
    proj_bias: bool = False
    repeat_kv_before_conv: bool = True
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 131072
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.dt_rank <= 0:
            object.__setattr__(self, "dt_rank", math.ceil(self.d_model / 16))
        problems = []
        if self.d_xb % self.d_state:
            problems.append(f"d_xb={self.d_xb} is not a multiple of d_state={self.d_state}")
        if self.d_inner % self.d_xb:
            problems.append(f"d_inner={self.d_inner} is not a multiple of d_xb={self.d_xb}")
        if self.num_attention_heads % self.num_key_value_heads:
            problems.append("num_attention_heads is not a multiple of num_key_value_heads")
        bad = [i for i in self.attn_layers if not 0 <= i < self.n_layer]
        if bad:
            problems.append(f"attn_layers {bad} outside 0..{self.n_layer - 1}")
        if problems:
            raise HybridConfigError("; ".join(problems))

    @property
    def mamba_layers(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.n_layer) if i not in self.attn_layers)

    @property
    def repeat_group(self) -> int:
        """How many times each (x, B) group of width d_state is repeated to reach d_inner."""
        return self.d_inner // self.d_xb

    @property
    def conv_dim(self) -> int:
        return self.d_inner if self.repeat_kv_before_conv else self.d_xb

    def to_mamba_config(self) -> dict[str, Any]:
        """The ``mamba_config.json`` this config was (or would be) read from."""
        return {
            "d_model": self.d_model,
            "d_inner": self.d_inner,
            "d_xb": self.d_xb,
            "ssm_cfg": {"d_state": self.d_state, "d_conv": self.d_conv, "expand": 1, "dt_rank": self.dt_rank},
            "attn_layers": list(self.attn_layers),
            "n_layer": self.n_layer,
            "intermediate_size": self.intermediate_size,
            "rms_norm_eps": self.rms_norm_eps,
            "vocab_size": self.vocab_size,
            "hidden_act": self.hidden_act,
        }


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HybridConfigError(f"{path}: not found (an M1 checkpoint needs config.json and mamba_config.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HybridConfigError(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise HybridConfigError(f"{path}: expected a JSON object")
    return data


def _require(data: dict[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise HybridConfigError(f"{path}: missing key {key!r}")
    return data[key]


def load_config(folder: str | Path) -> HybridConfig:
    """Combine ``config.json`` (Llama) and ``mamba_config.json`` (hybrid layout) of ``folder``."""
    folder = Path(folder)
    llama_path, mamba_path = folder / "config.json", folder / "mamba_config.json"
    llama, mamba = _read_json(llama_path), _read_json(mamba_path)

    ssm = dict(mamba.get("ssm_cfg") or {})
    unknown = set(ssm) - _SSM_USED - _SSM_INIT_ONLY
    if unknown:
        raise HybridConfigError(f"{mamba_path}: unsupported ssm_cfg key(s) {sorted(unknown)}")

    d_model = int(_require(mamba, "d_model", mamba_path))
    hidden = int(llama.get("hidden_size", d_model))
    if hidden != d_model:
        raise HybridConfigError(f"{mamba_path}: d_model={d_model} but {llama_path} hidden_size={hidden}")
    heads = int(_require(llama, "num_attention_heads", llama_path))
    d_inner = mamba.get("d_inner") or int(ssm.get("expand", 1) * d_model)
    eos = llama.get("eos_token_id")
    eos_ids = tuple(eos) if isinstance(eos, list) else ((eos,) if eos is not None else ())
    rms_eps = mamba.get("rms_norm_eps", llama.get("rms_norm_eps", 1e-5))
    intermediate = mamba.get("intermediate_size", llama.get("intermediate_size"))
    if intermediate is None:
        raise HybridConfigError(f"{mamba_path}: missing key 'intermediate_size' (also absent from {llama_path})")
    vocab = mamba.get("vocab_size", llama.get("vocab_size"))
    if vocab is None:
        raise HybridConfigError(f"{mamba_path}: missing key 'vocab_size' (also absent from {llama_path})")
    return HybridConfig(
        vocab_size=int(vocab),
        d_model=d_model,
        d_inner=int(d_inner),
        d_xb=int(_require(mamba, "d_xb", mamba_path)),
        n_layer=int(mamba.get("n_layer", llama.get("num_hidden_layers", 0))),
        attn_layers=tuple(int(i) for i in _require(mamba, "attn_layers", mamba_path)),
        intermediate_size=int(intermediate),
        num_attention_heads=heads,
        num_key_value_heads=int(llama.get("num_key_value_heads", heads)),
        head_dim=int(llama.get("head_dim") or d_model // heads),
        d_state=int(ssm.get("d_state", 16)),
        d_conv=int(ssm.get("d_conv", 4)),
        dt_rank=0 if ssm.get("dt_rank", "auto") == "auto" else int(ssm["dt_rank"]),
        conv_bias=bool(ssm.get("conv_bias", True)),
        proj_bias=bool(ssm.get("bias", False)),
        repeat_kv_before_conv=bool(ssm.get("repeat_kv_before_conv", True)),
        rms_norm_eps=float(rms_eps),
        rope_theta=float(llama.get("rope_theta", 10000.0)),
        hidden_act=str(mamba.get("hidden_act", llama.get("hidden_act", "silu"))),
        tie_word_embeddings=bool(llama.get("tie_word_embeddings", False)),
        max_position_embeddings=int(llama.get("max_position_embeddings", 131072)),
        bos_token_id=llama.get("bos_token_id"),
        eos_token_ids=tuple(int(i) for i in eos_ids),
        pad_token_id=llama.get("pad_token_id"),
        extra={"rope_scaling": llama.get("rope_scaling")},
    )
