"""The M1 (MambaInLlama) hybrid model in PyTorch: CPU reference path and CUDA fast path.

``load_hybrid(path, device, dtype)`` builds it from an M1 checkpoint folder;
``generation.generate`` runs batched prefill + decode with sampling.
"""

from m1eval.hybrid.config import HybridConfig, HybridConfigError, load_config
from m1eval.hybrid.loading import CheckpointError, load_hybrid
from m1eval.hybrid.model import HybridCache, HybridForCausalLM, HybridOutput

__all__ = [
    "CheckpointError",
    "HybridCache",
    "HybridConfig",
    "HybridConfigError",
    "HybridForCausalLM",
    "HybridOutput",
    "load_config",
    "load_hybrid",
]
