"""``vllm::m1eval_mamba_mixer``: the Mamba layer as one opaque op, as vLLM wraps its own Mamba-1 layer.

torch.compile and CUDA graphs treat the op as a boundary (it is appended to vLLM's list of
graph-splitting ops), so the layer's per-request Python work (prefill spans, state slots) runs
eagerly. This module has no ``from __future__ import annotations``: torch infers the op's
schema from the real annotations.
"""

import torch

OP_NAME = "m1eval_mamba_mixer"
_registered = False


def register_op() -> None:
    """Register the op once per process (vLLM loads plugins in every process, maybe more than once)."""
    global _registered
    if _registered:
        return
    from vllm.compilation.breakable_cudagraph import eager_break_during_capture
    from vllm.config.compilation import CompilationConfig
    from vllm.forward_context import get_forward_context
    from vllm.utils.torch_utils import LayerNameType, _resolve_layer_name, direct_register_custom_op

    def m1eval_mamba_mixer(hidden_states: torch.Tensor, output: torch.Tensor, layer_name: LayerNameType) -> None:
        layer = get_forward_context().no_compile_layers[_resolve_layer_name(layer_name)]
        layer.forward_impl(hidden_states, output)

    direct_register_custom_op(op_name=OP_NAME, op_func=eager_break_during_capture(m1eval_mamba_mixer),
                              mutates_args=["output"])  # fmt: skip
    if f"vllm::{OP_NAME}" not in CompilationConfig._attention_ops:
        CompilationConfig._attention_ops.append(f"vllm::{OP_NAME}")
    _registered = True
