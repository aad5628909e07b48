"""Load an M1-style checkpoint folder into ``HybridForCausalLM`` with strict key checking.

The published loader starts from the Llama base model (downloading it) and then
swaps layers; here the model is built directly from the two config files on the meta
device and every tensor comes from the folder, so nothing is ever downloaded and a
missing or misnamed weight is an error instead of a silently random parameter.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from m1eval.hybrid.config import HybridConfig, HybridConfigError, load_config
from m1eval.hybrid.model import HybridForCausalLM


class CheckpointError(HybridConfigError):
    """Weights missing, misnamed or mis-shaped; the message names the folder and the keys."""


def _weight_files(folder: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / shard for shard in shards]
    for pattern in ("*.safetensors", "pytorch_model*.bin", "*.bin"):
        files = sorted(folder.glob(pattern))
        if files:
            return files
    raise CheckpointError(f"{folder}: no weights found (expected *.safetensors or pytorch_model*.bin)")


def read_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in _weight_files(Path(folder)):
        if not path.is_file():
            raise CheckpointError(f"{path}: listed in the index but not found")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            part = load_file(str(path))
        else:
            part = torch.load(path, map_location="cpu", weights_only=True)
        duplicate = set(part) & set(state)
        if duplicate:
            raise CheckpointError(f"{path}: keys already loaded from another shard: {sorted(duplicate)[:5]}")
        state.update(part)
    return state


def _check_keys(model: HybridForCausalLM, state: dict[str, torch.Tensor], folder: Path) -> None:
    expected = set(model.state_dict())
    if model.config.tie_word_embeddings:
        expected.discard("lm_head.weight")
        state.pop("lm_head.weight", None)  # tied: the embedding is the head
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) {missing[:8]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) {unexpected[:8]}")
        raise CheckpointError(f"{folder}: weights do not match mamba_config.json: " + "; ".join(parts))
    params = model.state_dict()
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(params[name].shape):
            raise CheckpointError(f"{folder}: {name} has shape {tuple(tensor.shape)}, "
                                  f"the configs imply {tuple(params[name].shape)}")  # fmt: skip


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def build_hybrid(config: HybridConfig, state: dict[str, torch.Tensor], device, dtype,
                 folder: Path = Path("<memory>")) -> HybridForCausalLM:  # fmt: skip
    with torch.device("meta"):
        model = HybridForCausalLM(config)
    _check_keys(model, state, folder)
    state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=not config.tie_word_embeddings, assign=True)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval()


def load_hybrid(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> HybridForCausalLM:
    """Build the model from ``path``'s config.json + mamba_config.json and load its weights.

    ``dtype`` defaults to bfloat16 on CUDA and float32 on CPU. Raises ``CheckpointError``
    naming the folder and keys when weights are missing, unexpected or mis-shaped.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoint folder")
    device = torch.device(device)
    config = load_config(folder)
    return build_hybrid(config, read_state_dict(folder), device, dtype or default_dtype(device), folder)
