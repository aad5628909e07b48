"""Model presets: the paper settings that make a run comparable to published numbers.

A preset fixes the hub id, the engine that serves it, the instruction appended to each
question and the sampling defaults its paper used. Anything else (a hub id or a local
folder) works too when the user names the engine, so presets are a convenience, never
a gate.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

R1_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
M1_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
MAX_NEW_TOKENS = 32768


class ModelError(Exception):
    """The model argument names neither a preset nor something an engine can load."""


@dataclass(frozen=True)
class ModelPreset:
    name: str
    hub_id: str
    engine: str
    temperature: float
    top_p: float
    suffix: str
    max_tokens: int = MAX_NEW_TOKENS
    description: str = ""
    engine_options: dict[str, Any] = field(default_factory=dict)
    # Extraction policy `run` grades with when --extraction is not given (m1eval.grading.extract).
    extraction: str = "boxed"


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset("m1", "togethercomputer/M1-3B", "m1", 0.7, 1.0, M1_SUFFIX,
                    description="M1-3B hybrid Mamba reasoning model (native PyTorch engine)"),
        ModelPreset("r1-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "vllm", 0.6, 0.95, R1_SUFFIX,
                    description="DeepSeek-R1 distilled into Qwen2.5-Math-1.5B"),
        ModelPreset("r1-qwen-7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "vllm", 0.6, 0.95, R1_SUFFIX,
                    description="DeepSeek-R1 distilled into Qwen2.5-Math-7B"),
        ModelPreset("r1-llama-8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "vllm", 0.6, 0.95, R1_SUFFIX,
                    description="DeepSeek-R1 distilled into Llama-3.1-8B"),
        # The M1 paper's transformer baseline; no paper-specific sampling, so the R1 settings.
        ModelPreset("llama-3.2-3b", "meta-llama/Llama-3.2-3B-Instruct", "vllm", 0.6, 0.95, R1_SUFFIX,
                    description="Llama-3.2-3B-Instruct (transformer baseline of the M1 paper)"),
    )
}

# Defaults for a hub id or folder that is not a preset.
DEFAULT_TEMPERATURE = 0.6
DEFAULT_TOP_P = 0.95

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    """What a ``--model`` argument means: where to load from and the defaults to sample with."""

    name: str  # display name: preset name or folder/hub basename
    path: str  # hub id or local folder given to the engine
    preset: str | None
    engine: str
    temperature: float
    top_p: float
    suffix: str
    max_tokens: int
    engine_options: dict[str, Any]

    @property
    def is_local(self) -> bool:
        return Path(self.path).exists()


def looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "/"))


def resolve_model(model: str, engine: str | None = None) -> ResolvedModel:
    """Resolve a preset name, a local folder or a hub id (the last two need ``engine``)."""
    if model in PRESETS:
        preset = PRESETS[model]
        return ResolvedModel(
            name=preset.name, path=preset.hub_id, preset=preset.name, engine=engine or preset.engine,
            temperature=preset.temperature, top_p=preset.top_p, suffix=preset.suffix,
            max_tokens=preset.max_tokens, engine_options=dict(preset.engine_options),
        )
    known = ", ".join(PRESETS)
    local = Path(os.path.expanduser(model))
    if not local.exists() and not looks_like_hub_id(model):
        raise ModelError(
            f"unknown model {model!r}: not a preset ({known}), not an existing folder and not a hub id "
            "like 'org/name'"
        )
    if engine is None:
        raise ModelError(
            f"model {model!r} is not a preset ({known}); pass --engine (vllm, hf, openai, m1) to run a "
            "hub id or local folder"
        )
    path = str(local.resolve()) if local.exists() else model
    return ResolvedModel(
        name=Path(model.rstrip("/")).name, path=path, preset=None, engine=engine,
        temperature=DEFAULT_TEMPERATURE, top_p=DEFAULT_TOP_P, suffix=R1_SUFFIX,
        max_tokens=MAX_NEW_TOKENS, engine_options={},
    )
