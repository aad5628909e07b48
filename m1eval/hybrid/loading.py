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


# The layouts ``save_pretrained`` / ``torch.save`` leave, in the order they are looked for:
# a sharded checkpoint's index wins over a stray single file beside it (never both are read).
WEIGHT_LAYOUTS = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                  "pytorch_model.bin")  # fmt: skip


def _index_shards(index: Path) -> list[Path]:
    try:
        data = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{index}: unreadable index ({exc})") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: no 'weight_map' object (tensor name -> shard file)")
    shards = sorted({str(name) for name in weight_map.values()})
    bad = [name for name in shards if Path(name).name != name]
    if bad:
        raise CheckpointError(f"{index}: shard names must be plain file names in the folder, got {bad[:3]}")
    return [index.parent / name for name in shards]


def weight_files(folder: Path) -> list[Path]:
    """The weight files of ``folder`` in the first layout of ``WEIGHT_LAYOUTS`` it holds."""
    for name in WEIGHT_LAYOUTS:
        path = folder / name
        if path.is_file():
            return _index_shards(path) if name.endswith(".index.json") else [path]
    raise CheckpointError(f"{folder}: no weights found (expected one of {', '.join(WEIGHT_LAYOUTS)})")


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: listed in the index but not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        part = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors/pickle raise several types; all mean "unreadable"
        raise CheckpointError(f"{path}: cannot read the weights ({type(exc).__name__}: {exc})") from exc
    if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return part


def read_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, shards merged; a key in two shards is an error."""
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(Path(folder)):
        part = _read_file(path)
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


def load_hybrid(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> HybridForCausalLM:
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
