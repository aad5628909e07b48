"""The native M1 engine: ``m1eval.hybrid`` behind the engine protocol.

M1's published inference stack pins torch 2.4 / vllm 0.6.3 and needs a GPU even to
load; this engine runs the same weights with m1eval's own model code on CPU (reference
path) or CUDA (mamba_ssm / causal_conv1d kernels and CUDA graphs when installed).

Batching: the requests of one ``generate`` call are cut into batches of at most
``max_batch`` sample rows; each batch prefills its distinct prompts once and expands
the states to one row per sample, and is yielded (and stored by the runner) as soon as
it finishes. Every row samples with its own seed (``GenerationRequest.seeds``) through a
counter-based RNG, so a sample's text does not depend on the batch it landed in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m1eval.engines.base import (
    BatchClock,
    BatchResult,
    EngineBase,
    EngineError,
    EngineOutOfMemory,
    GenerationRequest,
    TimedGeneration,
    batch_result,
    free_accelerator,
    is_out_of_memory,
    prefix_chars,
)
from m1eval.engines.options import OptionSpec, checked_options
from m1eval.records import Completion, SamplingConfig

if TYPE_CHECKING:
    from m1eval.hybrid.model import HybridForCausalLM

OPTION_SPECS: dict[str, OptionSpec] = {
    "device": OptionSpec("str", help="cpu, cuda, cuda:1 (default: cuda when available)"),
    "dtype": OptionSpec("str", changes_samples=True, help="weights dtype: bfloat16, float16, float32"),
    "max_batch": OptionSpec("int", 1, help="sample rows per decode batch (default 32 on CPU, 256 on CUDA)"),
    "cuda_graph": OptionSpec(
        "bool", nullable=True, help="capture the decode step as a CUDA graph (true/false; default: on CUDA)"
    ),
    # the fused kernels and the PyTorch scan differ in summation order: other numerics, other samples
    "kernels": OptionSpec(
        "str",
        choices=("auto", "torch", "kernels"),
        changes_samples=True,
        help="auto, torch or kernels (mamba_ssm / causal_conv1d)",
    ),
    "tokenizer": OptionSpec("str", changes_samples=True, help="tokenizer folder or hub id, when it is not the model's"),
    "revision": OptionSpec("str", changes_samples=True, help="hub revision (branch, tag or commit) of the model"),
    "eos": OptionSpec(
        "str",
        choices=("all", "tokenizer"),
        changes_samples=True,
        help="stop at every EOS id of the generation config (all) or the tokenizer's one",
    ),
}
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}  # fmt: skip


def resolve_checkpoint(model: str, revision: str | None = None) -> Path:
    """A local folder, or a hub id already in the local HF cache; never downloads."""
    local = Path(model).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, revision=revision, local_files_only=True))
    except Exception as exc:
        raise EngineError(
            f"m1: {model!r} is neither a local folder nor in the local Hugging Face cache ({type(exc).__name__}). "
            "Download the checkpoint first (e.g. `huggingface-cli download togethercomputer/M1-3B`) or pass "
            "its folder as the model"
        ) from exc


def _eos_ids(policy: str, config_ids: Sequence[int], tokenizer_id: int | None) -> list[int]:
    """``all``: config.json's ids and the tokenizer's; ``tokenizer``: the tokenizer's one id (M1's eval)."""
    if policy == "tokenizer":
        if tokenizer_id is None:
            raise EngineError("m1: eos=tokenizer but the tokenizer has no eos_token_id")
        return [int(tokenizer_id)]
    if policy != "all":
        raise EngineError(f"m1: eos must be 'all' or 'tokenizer', got {policy!r}")
    return sorted({*config_ids, *([tokenizer_id] if tokenizer_id is not None else [])})


class M1Engine(EngineBase):
    """Generation with the native hybrid model; see the module docstring for batching."""

    name = "m1"
    option_specs = OPTION_SPECS
    model: HybridForCausalLM | None  # None once closed

    def __init__(self, model: str, *, options: dict[str, Any] | None = None) -> None:
        options = checked_options("m1", options, OPTION_SPECS)
        import torch

        from m1eval.hybrid import HybridConfigError, kernels, load_hybrid

        device_name = str(options.get("device", "auto"))
        if device_name == "auto":
            device_name = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device_name)
        except RuntimeError as exc:
            raise EngineError(f"m1: bad device option {device_name!r}: {exc}") from exc
        dtype_name = str(options.get("dtype", "auto"))
        if dtype_name != "auto" and dtype_name not in _DTYPES:
            raise EngineError(f"m1: dtype must be auto or one of {sorted(_DTYPES)}, got {dtype_name!r}")
        dtype = None if dtype_name == "auto" else getattr(torch, _DTYPES[dtype_name])
        kernels.set_mode(str(options.get("kernels", "auto")))
        self.max_batch = int(options.get("max_batch", 256 if self.device.type == "cuda" else 32))
        if self.max_batch < 1:
            raise EngineError(f"m1: max_batch must be >= 1, got {self.max_batch}")
        self.cuda_graph = options.get("cuda_graph")
        folder = resolve_checkpoint(model, options.get("revision"))
        try:
            loaded = load_hybrid(folder, self.device, dtype)
        except HybridConfigError as exc:
            raise EngineError(f"m1: cannot load {folder}: {exc}") from exc
        except Exception as exc:
            if is_out_of_memory(exc):
                raise EngineOutOfMemory(f"m1: out of memory loading {folder} on {self.device}: {exc}") from exc
            raise
        self.model = loaded
        from transformers import AutoTokenizer

        tokenizer_path = options.get("tokenizer") or str(folder)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        except Exception as exc:
            raise EngineError(f"m1: cannot load the tokenizer from {tokenizer_path}: {exc}") from exc
        config = loaded.config
        self.eos_token_ids = _eos_ids(str(options.get("eos", "all")), config.eos_token_ids, self.tokenizer.eos_token_id)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else config.pad_token_id
        self.pad_token_id = int(pad if pad is not None else (self.eos_token_ids or [0])[0])

    # ------------------------------------------------------------------ helpers

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        if request.prompt_token_ids is not None:
            return list(request.prompt_token_ids)
        # chat-templated text already starts with BOS where the template puts one
        return list(self.tokenizer(request.prompt, add_special_tokens=False)["input_ids"])

    def _batches(self, requests: Sequence[GenerationRequest]) -> Iterator[list[tuple[GenerationRequest, int, int]]]:
        """(request, sample index, seed) rows, at most max_batch per batch, a problem's samples together."""
        batch: list[tuple[GenerationRequest, int, int]] = []
        for request in requests:
            for index, seed in zip(request.sample_indices, request.seeds):
                batch.append((request, index, seed))
                if len(batch) == self.max_batch:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _run(self, prompts, counts, seeds, sampling_params, max_new_tokens, *, ignore_eos=False, stop_test=None):
        from m1eval.hybrid.generation import generate

        if self.model is None:
            raise EngineError("m1: the engine is closed")
        report = self.on_progress
        try:
            return generate(
                self.model, prompts, max_new_tokens=max_new_tokens, samples_per_prompt=counts, seeds=seeds,
                sampling=sampling_params, eos_token_ids=self.eos_token_ids, pad_token_id=self.pad_token_id,
                ignore_eos=ignore_eos, stop_test=stop_test, cuda_graph=self.cuda_graph,
                on_tokens=(lambda k: report(0, k)) if report is not None else None,
            )  # fmt: skip
        except Exception as exc:
            if is_out_of_memory(exc):
                raise EngineOutOfMemory(f"m1: out of memory at {sum(counts)} rows; lower max_batch: {exc}") from exc
            raise

    # ------------------------------------------------------------------ protocol

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        from m1eval.hybrid.sampling import SamplingParams

        try:
            params = SamplingParams(sampling.temperature, sampling.top_p, sampling.top_k)
        except ValueError as exc:
            raise EngineError(f"m1: {exc}") from exc
        stops = [s for s in sampling.stop if s]
        stop_test = (lambda row, ids: any(s in self.decode(ids) for s in stops)) if stops else None
        for batch in self._batches(requests):
            groups: dict[str, list[tuple[GenerationRequest, int, int]]] = {}
            for row in batch:
                groups.setdefault(row[0].problem_id, []).append(row)
            ordered = [row for rows in groups.values() for row in rows]
            prompts = [self._prompt_ids(rows[0][0]) for rows in groups.values()]
            counts = [len(rows) for rows in groups.values()]
            clock = BatchClock()
            result = self._run(prompts, counts, [seed for _, _, seed in ordered], params, sampling.max_tokens,
                               stop_test=stop_test)  # fmt: skip
            clock.stop()
            completions = [
                self._completion(request, index, seed, ids, reason, prompt_len, stops)
                for (request, index, seed), ids, reason, prompt_len in zip(
                    ordered, result.tokens, result.finish_reasons, result.prompt_lengths
                )
            ]
            extra = {"prefill_seconds": result.prefill_seconds, "decode_seconds": result.decode_seconds}
            yield batch_result(self.name, completions, clock, extra)

    def _completion(self, request, index, seed, ids, reason, prompt_len, stops) -> Completion:
        text = self.decode(ids)
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        if cut >= 0:  # a stop string ends the text (excluded, as vLLM does) and the token count
            text, reason = text[:cut], "stop"
            kept = next(n for n in range(1, len(ids) + 1) if len(self.decode(ids[:n])) > cut or n == len(ids))
            ids = ids[:kept]
        return Completion(
            problem_id=request.problem_id, sample_index=index, seed=seed, text=text, prompt_tokens=prompt_len,
            completion_tokens=len(ids), finish_reason=reason, batch_id="",  # the batch's, set by batch_result
            prefix_chars=prefix_chars(self.decode, ids),
        )  # fmt: skip

    def timed_greedy(self, prompt_token_ids: list[list[int]], gen_len: int) -> TimedGeneration:
        from m1eval.hybrid.sampling import SamplingParams

        t0 = time.perf_counter()
        result = self._run([list(r) for r in prompt_token_ids], 1, list(range(len(prompt_token_ids))),
                           SamplingParams(), gen_len, ignore_eos=True)  # fmt: skip
        wall = time.perf_counter() - t0
        return TimedGeneration(
            batch_size=len(prompt_token_ids), prompt_len=max((len(r) for r in prompt_token_ids), default=0),
            gen_len=gen_len, wall_seconds=wall, generated_tokens=result.generated_tokens,
            prefill_seconds=result.prefill_seconds,
        )  # fmt: skip

    def close(self) -> None:
        self.model = None
        free_accelerator()
