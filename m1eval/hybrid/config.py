"""The hybrid model's shape, read from an M1 / MambaInLlama checkpoint folder.

An M1 checkpoint carries two configs: ``config.json`` is the ordinary Llama config of
the model it was distilled from (heads, RoPE base, token ids) and ``mamba_config.json``
says which layers became Mamba and how wide the Mamba mixers are (``d_inner``, ``d_xb``,
``ssm_cfg``). Both are needed: the attention layers keep Llama's heads, the Mamba layers
are sized by the second file. Nothing here imports torch, so configs can be inspected
cheaply.

The published code writes ``mamba_config.json`` from its config object's ``__dict__``, so
the published checkpoints carry ``"vocab_size": null`` and often ``"d_inner": null``, and
files from older versions of the class lack keys it defaults. ``load_config`` reads them as
``MambaConfig(**json)`` does (see ``PUBLISHED_MAMBA_DEFAULTS``) instead of demanding keys
the published loader never needed.
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


# The published ``MambaConfig`` dataclass (MambaInLlama / M1, ``hybrid_mamba_config.py``):
# its checkpoints write ``mamba_config.json`` from the object's ``__dict__``, so a key is
# absent only when the file came from an older class, and ``None`` is a real value meaning
# "not set here". These are that class's defaults, used for absent keys exactly as
# ``MambaConfig(**json)`` would use them.
PUBLISHED_MAMBA_DEFAULTS: dict[str, Any] = {
    "d_model": 2560,
    "ssm_cfg": {},
    "rms_norm_eps": 1e-5,
    "vocab_size": None,  # None: the embedding is the Llama model's, sized by config.json
    "d_inner": None,  # None: the Mamba layer's expand * d_model
    "d_xb": 2560,
    "intermediate_size": 10240,
    "hidden_act": "silu",
    "n_layer": 32,
    "attn_layers": [],
}
# The published Mamba layer's keyword defaults for ``ssm_cfg`` entries.
PUBLISHED_SSM_DEFAULTS: dict[str, Any] = {
    "d_state": 16, "d_conv": 4, "expand": 2, "dt_rank": "auto", "conv_bias": True, "bias": False,
    "repeat_kv_before_conv": True,
}  # fmt: skip
# transformers' LlamaConfig defaults for the config.json keys that do not size a tensor.
# Keys that size tensors (vocab_size, hidden_size, num_attention_heads, intermediate_size,
# num_hidden_layers) are required instead: LlamaConfig would default them to Llama-1-7B's
# values, which can only end in a confusing shape error at load time.
LLAMA_DEFAULTS: dict[str, Any] = {
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
    "max_position_embeddings": 2048, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None,
}  # fmt: skip


def _require(data: dict[str, Any], key: str, path: Path, why: str = "") -> Any:
    if data.get(key) is None:
        what = f"{key!r} is null" if key in data else f"missing key {key!r}"
        raise HybridConfigError(f"{path}: {what}" + (f" ({why})" if why else ""))
    return data[key]


def _published(data: dict[str, Any], key: str, defaults: dict[str, Any]) -> Any:
    """``data[key]`` as the published class reads it: an absent key takes the class default."""
    return data[key] if key in data else defaults[key]


def _int(value: Any, path: Path, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise HybridConfigError(f"{path}: {key!r} must be an integer, got {value!r}")
    return int(value)


def load_config(folder: str | Path) -> HybridConfig:
    """Combine ``config.json`` (Llama) and ``mamba_config.json`` (hybrid layout) of ``folder``.

    ``mamba_config.json`` is read as the published ``MambaConfig(**json)`` reads it: an
    absent key takes the class default (``PUBLISHED_MAMBA_DEFAULTS``), ``"vocab_size": null``
    means config.json's vocabulary (the published model keeps the Llama embedding) and
    ``"d_inner": null`` means ``expand * d_model`` with the Mamba layer's ``expand`` default.
    Where the two files must agree (width, depth, MLP width, norm epsilon) a disagreement
    is an error naming both files and keys, since the published model would fail to load
    the weights or silently mix shapes.
    """
    folder = Path(folder)
    llama_path, mamba_path = folder / "config.json", folder / "mamba_config.json"
    llama, mamba = _read_json(llama_path), _read_json(mamba_path)

    def m(key: str) -> Any:
        return _published(mamba, key, PUBLISHED_MAMBA_DEFAULTS)

    ssm_raw = m("ssm_cfg")
    if ssm_raw is None:
        ssm_raw = {}
    if not isinstance(ssm_raw, dict):
        raise HybridConfigError(f"{mamba_path}: 'ssm_cfg' must be an object, got {type(ssm_raw).__name__}")
    ssm = {key: value for key, value in ssm_raw.items() if value is not None}
    unknown = set(ssm) - _SSM_USED - _SSM_INIT_ONLY
    if unknown:
        raise HybridConfigError(f"{mamba_path}: unsupported ssm_cfg key(s) {sorted(unknown)}")

    def s(key: str) -> Any:
        return _published(ssm, key, PUBLISHED_SSM_DEFAULTS)

    for key in ("d_model", "d_xb", "n_layer", "intermediate_size"):
        if key in mamba and mamba[key] is None:
            raise HybridConfigError(f"{mamba_path}: {key!r} is null (the published MambaConfig needs a number)")
    d_model = _int(m("d_model"), mamba_path, "d_model")
    hidden = _int(_require(llama, "hidden_size", llama_path), llama_path, "hidden_size")
    if hidden != d_model:
        raise HybridConfigError(f"{mamba_path}: d_model={d_model}{_absent(mamba, 'd_model')} but {llama_path} "
                                f"hidden_size={hidden}")  # fmt: skip
    heads = _int(_require(llama, "num_attention_heads", llama_path), llama_path, "num_attention_heads")
    n_layer = _int(m("n_layer"), mamba_path, "n_layer")
    llama_layers = _int(_require(llama, "num_hidden_layers", llama_path), llama_path, "num_hidden_layers")
    if n_layer != llama_layers:
        raise HybridConfigError(f"{mamba_path}: n_layer={n_layer}{_absent(mamba, 'n_layer')} but {llama_path} "
                                f"num_hidden_layers={llama_layers}")  # fmt: skip
    intermediate = _int(m("intermediate_size"), mamba_path, "intermediate_size")
    llama_intermediate = _int(_require(llama, "intermediate_size", llama_path), llama_path, "intermediate_size")
    if intermediate != llama_intermediate:
        # the published Mamba layers size their MLP from mamba_config.json, the attention layers
        # from config.json; m1eval's model (and every published M1 checkpoint) uses one width
        raise HybridConfigError(
            f"{mamba_path}: intermediate_size={intermediate}{_absent(mamba, 'intermediate_size')} but {llama_path} "
            f"intermediate_size={llama_intermediate} (Mamba and attention layers with different MLP widths are "
            "not supported)"
        )
    rms_eps = float(m("rms_norm_eps") if m("rms_norm_eps") is not None else 1e-5)
    llama_eps = float(_published(llama, "rms_norm_eps", LLAMA_DEFAULTS))
    if not math.isclose(rms_eps, llama_eps, rel_tol=1e-9, abs_tol=0.0):
        raise HybridConfigError(
            f"{mamba_path}: rms_norm_eps={rms_eps:g}{_absent(mamba, 'rms_norm_eps')} but {llama_path} "
            f"rms_norm_eps={llama_eps:g}{_absent(llama, 'rms_norm_eps', 'LlamaConfig')} (one epsilon for every "
            "layer is supported)"
        )

    llama_vocab = llama.get("vocab_size")
    mamba_vocab = m("vocab_size")
    if llama_vocab is None:
        why = ("mamba_config.json has \"vocab_size\": null, which means: take it from config.json"
               if mamba_vocab is None else "")  # fmt: skip
        if mamba_vocab is None:
            _require(llama, "vocab_size", llama_path, why)
        vocab = _int(mamba_vocab, mamba_path, "vocab_size")
    else:
        vocab = _int(llama_vocab, llama_path, "vocab_size")
        if mamba_vocab is not None and _int(mamba_vocab, mamba_path, "vocab_size") != vocab:
            raise HybridConfigError(f"{mamba_path}: vocab_size={mamba_vocab} but {llama_path} vocab_size={vocab}")

    expand = s("expand")
    d_inner_raw = m("d_inner")
    d_inner = int(expand * d_model) if d_inner_raw is None else _int(d_inner_raw, mamba_path, "d_inner")
    dt_rank = s("dt_rank")
    eos = _published(llama, "eos_token_id", LLAMA_DEFAULTS)
    eos_ids = tuple(eos) if isinstance(eos, list) else ((eos,) if eos is not None else ())
    kv_heads = llama.get("num_key_value_heads")
    head_dim = llama.get("head_dim")
    hidden_act = m("hidden_act") or "silu"
    llama_act = _published(llama, "hidden_act", LLAMA_DEFAULTS)
    if hidden_act != llama_act:
        raise HybridConfigError(f"{mamba_path}: hidden_act={hidden_act!r} but {llama_path} hidden_act={llama_act!r}")
    defaulted = sorted(key for key in PUBLISHED_MAMBA_DEFAULTS if key not in mamba)
    try:
        return HybridConfig(
            vocab_size=vocab,
            d_model=d_model,
            d_inner=d_inner,
            d_xb=_int(m("d_xb"), mamba_path, "d_xb"),
            n_layer=n_layer,
            attn_layers=tuple(_int(i, mamba_path, "attn_layers") for i in (m("attn_layers") or [])),
            intermediate_size=intermediate,
            num_attention_heads=heads,
            num_key_value_heads=heads if kv_heads is None else _int(kv_heads, llama_path, "num_key_value_heads"),
            head_dim=d_model // heads if head_dim is None else _int(head_dim, llama_path, "head_dim"),
            d_state=_int(s("d_state"), mamba_path, "ssm_cfg.d_state"),
            d_conv=_int(s("d_conv"), mamba_path, "ssm_cfg.d_conv"),
            dt_rank=0 if dt_rank == "auto" else _int(dt_rank, mamba_path, "ssm_cfg.dt_rank"),
            conv_bias=bool(s("conv_bias")),
            proj_bias=bool(s("bias")),
            repeat_kv_before_conv=bool(s("repeat_kv_before_conv")),
            rms_norm_eps=rms_eps,
            rope_theta=float(_published(llama, "rope_theta", LLAMA_DEFAULTS)),
            hidden_act=str(hidden_act),
            tie_word_embeddings=bool(_published(llama, "tie_word_embeddings", LLAMA_DEFAULTS)),
            max_position_embeddings=int(_published(llama, "max_position_embeddings", LLAMA_DEFAULTS)),
            bos_token_id=_published(llama, "bos_token_id", LLAMA_DEFAULTS),
            eos_token_ids=tuple(int(i) for i in eos_ids),
            pad_token_id=llama.get("pad_token_id"),
            extra={"rope_scaling": llama.get("rope_scaling")},
        )
    except HybridConfigError as exc:
        note = f" (absent keys took the published MambaConfig defaults: {', '.join(defaulted)})" if defaulted else ""
        raise HybridConfigError(f"{mamba_path}: {exc}{note}") from exc


def _absent(data: dict[str, Any], key: str, source: str = "MambaConfig") -> str:
    return f" (absent: the published {source} default)" if key not in data else ""
