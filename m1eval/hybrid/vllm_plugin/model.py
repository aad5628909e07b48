"""``M1ForCausalLM`` for vLLM: M1's Mamba mixers and vLLM's Llama decoder layers, in the checkpoint's order.

Imported by vLLM only (lazily, through ``ModelRegistry``). The shape comes from the checkpoint's
``config.json`` + ``mamba_config.json`` read by ``m1eval.hybrid.config.load_config`` (the one
reader the native engine uses too); vLLM's own ``hf_config`` (the Llama config plus the
plugin's ``hf_overrides``) only says which Mamba path runs.

Attention layers are vLLM's ``LlamaDecoderLayer`` (paged KV cache, vLLM's attention
backends) with RoPE forced to the plain, unscaled form: the published model's attention
(mamba_ssm's ``MHA``) never reads config.json's Llama-3 ``rope_scaling`` and M1 was trained
without it. Weights keep the published names (``model.layers.{i}.mha.in_proj`` = q|k|v fused,
``mha.out_proj``, ``mamba.*``, ``mlp.{gate,up,down}_proj``); ``load_weights`` maps them onto
vLLM's fused ``qkv_proj`` / ``gate_up_proj``. Tensor and pipeline parallelism are not
supported (one GPU per engine; ``--replicas`` runs more engines).
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import VllmConfig
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.mamba.mamba_utils import MambaStateCopyFuncCalculator, MambaStateDtypeCalculator
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.model_loader.weight_utils import default_weight_loader
from vllm.model_executor.models.interfaces import HasInnerState, IsHybrid, SupportsMambaPrefixCaching
from vllm.model_executor.models.llama import LlamaDecoderLayer, LlamaMLP
from vllm.model_executor.models.utils import maybe_prefix
from vllm.platforms import current_platform
from vllm.sequence import IntermediateTensors

from m1eval.hybrid.config import HybridConfig, load_config
from m1eval.hybrid.vllm_plugin import PATH_KEY, default_mamba_path
from m1eval.hybrid.vllm_plugin.custom_op import register_op
from m1eval.hybrid.vllm_plugin.mixer import make_vllm_layer_class, state_shapes
from m1eval.hybrid.vllm_plugin.ops import resolve_ops

logger = logging.getLogger(__name__)


def checkpoint_folder(model: str, revision: str | None = None) -> Path:
    """The checkpoint folder vLLM was given: a local folder, or a hub id's snapshot in the local cache."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, revision=revision, local_files_only=True))


@functools.lru_cache(maxsize=8)
def _config(model: str, revision: str | None) -> HybridConfig:
    return load_config(checkpoint_folder(model, revision))


def hybrid_config(vllm_config: VllmConfig) -> HybridConfig:
    model_config = vllm_config.model_config
    return _config(str(model_config.model), model_config.revision)


def mamba_path(vllm_config: VllmConfig) -> str:
    chosen = getattr(vllm_config.model_config.hf_config, PATH_KEY, None)
    return str(chosen) if chosen else default_mamba_path(current_platform.is_cuda())


def unscaled_rope_config(hf_config, config: HybridConfig):
    """A copy of the Llama config whose RoPE is plain theta^(-2i/d), as the published attention runs it."""
    attention = copy.deepcopy(hf_config)
    attention.rope_parameters = {"rope_type": "default", "rope_theta": config.rope_theta}
    attention.head_dim = config.head_dim
    attention.num_key_value_heads = config.num_key_value_heads
    attention.layer_types = None  # no sliding windows; the hybrid layout is layers_block_type's
    return attention


class M1MambaDecoderLayer(nn.Module):
    """Pre-norm block around the Mamba mixer: h += mamba(norm(h)); h += mlp(norm(h)), with vLLM's fused residual norms."""

    def __init__(self, config: HybridConfig, mixer: nn.Module, prefix: str) -> None:
        super().__init__()
        self.mamba = mixer
        self.mlp = LlamaMLP(config.d_model, config.intermediate_size, config.hidden_act, prefix=f"{prefix}.mlp")
        self.input_layernorm = RMSNorm(config.d_model, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.d_model, eps=config.rms_norm_eps)

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor, residual: torch.Tensor | None):
        if residual is None:
            residual = hidden_states
            hidden_states = self.input_layernorm(hidden_states)
        else:
            hidden_states, residual = self.input_layernorm(hidden_states, residual)
        output = torch.empty_like(hidden_states)
        self.mamba(hidden_states, output)
        hidden_states, residual = self.post_attention_layernorm(output, residual)
        return self.mlp(hidden_states), residual


@support_torch_compile(dynamic_arg_dims={"input_ids": 0, "positions": 0, "intermediate_tensors": 0, "inputs_embeds": 0})
class M1Model(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = self.config = hybrid_config(vllm_config)
        parallel = vllm_config.parallel_config
        if parallel.tensor_parallel_size != 1 or parallel.pipeline_parallel_size != 1:
            raise ValueError("m1eval's M1 vLLM plugin runs on one device per engine (tensor_parallel_size=1, "
                             "pipeline_parallel_size=1); run replicas for more devices")  # fmt: skip
        path = mamba_path(vllm_config)
        ops = resolve_ops(path)
        logger.info("m1eval M1 plugin: Mamba layers on the %r path", path)
        model_config = vllm_config.model_config
        dtypes = M1ForCausalLM.get_mamba_state_dtype_from_config(vllm_config)
        layer_class = make_vllm_layer_class()
        attention_config = unscaled_rope_config(model_config.hf_config, config)
        self.embed_tokens = VocabParallelEmbedding(config.vocab_size, config.d_model)
        layers: list[nn.Module] = []  # LlamaDecoderLayer (attention) or M1MambaDecoderLayer
        for i in range(config.n_layer):
            layer_prefix = f"{prefix}.layers.{i}"
            if i in config.attn_layers:
                layers.append(LlamaDecoderLayer(vllm_config=vllm_config, prefix=layer_prefix, config=attention_config))
            else:
                mixer = layer_class(config, ops, cache_dtypes=dtypes, prefix=f"{layer_prefix}.mamba")
                layers.append(M1MambaDecoderLayer(config, mixer, layer_prefix))
        self.layers = nn.ModuleList(layers)
        self.norm = RMSNorm(config.d_model, eps=config.rms_norm_eps)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is not None:
            hidden_states = inputs_embeds
        elif input_ids is not None:
            hidden_states = self.embed_input_ids(input_ids)
        else:
            raise ValueError("m1eval M1 plugin: forward needs input_ids or inputs_embeds")
        residual = None
        for layer in self.layers:
            hidden_states, residual = layer(positions=positions, hidden_states=hidden_states, residual=residual)
        hidden_states, _ = self.norm(hidden_states, residual)
        return hidden_states


# published name -> (vLLM parameter name, shard id); q|k|v of the fused attention in_proj are split first
_RENAMES = ((".mha.out_proj.", ".self_attn.o_proj.", None), (".mlp.gate_proj.", ".mlp.gate_up_proj.", 0),
            (".mlp.up_proj.", ".mlp.gate_up_proj.", 1))  # fmt: skip


class M1ForCausalLM(nn.Module, HasInnerState, IsHybrid, SupportsMambaPrefixCaching):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        register_op()
        self.vllm_config = vllm_config
        self.model = M1Model(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        config = self.config = self.model.config
        self.lm_head = ParallelLMHead(config.vocab_size, config.d_model, prefix=maybe_prefix(prefix, "lm_head"))
        if config.tie_word_embeddings:
            self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
        self.logits_processor = LogitsProcessor(config.vocab_size)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def forward(self, input_ids, positions, intermediate_tensors=None, inputs_embeds=None, **kwargs):
        return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    # -- vLLM's hybrid interface: the Mamba state cache is sized before the model exists --------
    @classmethod
    def get_mamba_state_dtype_from_config(cls, vllm_config: VllmConfig) -> tuple[torch.dtype, torch.dtype]:
        """(conv, SSM) state dtypes; the SSM state defaults to fp32 whatever the model dtype, as in the
        native engine (it integrates over the whole text), unless ``mamba_ssm_cache_dtype`` is set."""
        cache = vllm_config.cache_config
        conv, ssm = MambaStateDtypeCalculator.mamba1_state_dtype(vllm_config.model_config.dtype,
                                                                 cache.mamba_cache_dtype, cache.mamba_ssm_cache_dtype)  # fmt: skip
        return conv, (torch.float32 if cache.mamba_ssm_cache_dtype == "auto" else ssm)

    @classmethod
    def get_mamba_state_shape_from_config(cls, vllm_config: VllmConfig):
        return state_shapes(hybrid_config(vllm_config))

    @classmethod
    def get_mamba_state_copy_func(cls):
        return MambaStateCopyFuncCalculator.mamba1_state_copy_func()

    # -- weights ---------------------------------------------------------------------------------
    def _named(self, name: str) -> list[tuple[str, object]]:
        """[(vLLM parameter name, shard id)] for one published tensor name."""
        if ".mha.in_proj." in name:
            target = name.replace(".mha.in_proj.", ".self_attn.qkv_proj.")
            return [(target, "q"), (target, "k"), (target, "v")]
        for old, new, shard in _RENAMES:
            if old in name:
                return [(name.replace(old, new), shard)]
        return [(name, None)]

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        c = self.config
        params = dict(self.named_parameters())
        loaded: set[str] = set()
        q_size, kv_size = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
        for name, tensor in weights:
            if name == "lm_head.weight" and c.tie_word_embeddings:
                continue
            targets = self._named(name)
            if targets[0][0] not in params:
                raise ValueError(f"m1eval M1 plugin: checkpoint tensor {name!r} has no place in the model "
                                 f"(layout from mamba_config.json: attention layers {list(c.attn_layers)})")  # fmt: skip
            if len(targets) == 3:  # fused q|k|v, in that order
                pieces = tensor.split([q_size, kv_size, kv_size], dim=0)
            else:
                pieces = [tensor]
            for (target, shard), piece in zip(targets, pieces):
                param = params[target]
                # the parameter's own loader (fused q|k|v ones take a shard id) or vLLM's two-argument default
                loader: Callable[..., None] = getattr(param, "weight_loader", default_weight_loader)
                if shard is None:
                    loader(param, piece)
                else:
                    loader(param, piece, shard)
                loaded.add(target)
        return loaded
