"""The transformers engine: batched ``generate`` with left padding, for models vLLM cannot serve.

Seeding: ``generate(do_sample=True)`` draws every row of a batch from one global RNG,
so a sample's text would depend on which rows share its batch. Here each row gets its
own ``torch.Generator`` seeded with that sample's seed, and a logits processor samples
the row's next token with it (after transformers' own temperature / top-k / top-p
warpers) and hands greedy decoding a one-hot score. The random stream of a sample is
then fixed by its seed alone; texts match across batch sizes unless padding changes a
logit enough to flip a draw (float32 on CPU: not observed in the tests).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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

OPTION_SPECS: dict[str, OptionSpec] = {
    "batch_size": OptionSpec("int", 1, help="sample rows per generate call (default 16)"),
    "device": OptionSpec("str", help="cpu, cuda, cuda:1 (default: cuda when available)"),
    "dtype": OptionSpec("str", changes_samples=True, help="weights dtype: bfloat16, float16, float32"),
    "revision": OptionSpec("str", changes_samples=True, help="hub revision (branch, tag or commit) of the model"),
    "trust_remote_code": OptionSpec("bool", help="allow the checkpoint's own Python code (true/false)"),
    # eager, sdpa and flash attention sum in different orders: other logits, other samples
    "attn_implementation": OptionSpec("str", changes_samples=True, help="eager, sdpa or flash_attention_2"),
}


@dataclass(frozen=True)
class _Row:
    problem_id: str
    sample_index: int
    seed: int
    prompt_ids: list[int]


class _SeededSampler:
    """Per-row seeded sampling as a logits processor; greedy decoding then picks the draw."""

    def __init__(self, seeds: list[int], sampling: SamplingConfig, device: Any) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.torch = torch
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        self.warpers: list[Any] = []
        if sampling.temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k and sampling.top_k > 0:
            self.warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(sampling.top_p))

    def __call__(self, input_ids, scores):
        torch = self.torch
        scores = scores.float()
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores, dim=-1)
        picks = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picks, 0.0)
        return out


class HFEngine(EngineBase):
    """transformers ``AutoModelForCausalLM.generate`` behind the m1eval engine protocol."""

    name = "hf"
    option_specs = OPTION_SPECS

    def __init__(self, model: str, *, options: dict[str, Any] | None = None) -> None:
        options = checked_options("hf", options, OPTION_SPECS)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.model_name = model
        self.options = options
        self.batch_size = int(options.get("batch_size", 16))
        self.device = torch.device(options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype_name = options.get("dtype") or ("bfloat16" if self.device.type == "cuda" else "float32")
        if dtype_name == "auto":
            dtype: Any = "auto"
        else:
            dtype = getattr(torch, str(dtype_name), None)
            if not isinstance(dtype, torch.dtype):
                raise EngineError(f"hf: unknown dtype {dtype_name!r} (float32, bfloat16, float16, auto)")
        extra = {k: options[k] for k in ("revision", "trust_remote_code", "attn_implementation") if k in options}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                model, **{k: v for k, v in extra.items() if k != "attn_implementation"}
            )
            # transformers decorates PreTrainedModel.to with functools.wraps(nn.Module.to), whose typeshed type does
            # not bind self, so mypy takes the device for the model
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, **extra).to(self.device)  # type: ignore[arg-type]
        except Exception as exc:
            if is_out_of_memory(exc):
                raise EngineOutOfMemory(f"hf: out of memory loading {model!r} on {self.device}: {exc}") from exc
            raise EngineError(f"hf: cannot load {model!r}: {type(exc).__name__}: {exc}") from exc
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    # ------------------------------------------------------------------ helpers

    def _ids(self, request: GenerationRequest) -> list[int]:
        if request.prompt_token_ids is not None:
            return list(request.prompt_token_ids)
        return list(self.tokenizer(request.prompt, add_special_tokens=False)["input_ids"])

    def _pad(self, rows: Sequence[list[int]]):
        torch = self.torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _cut(self, generated: list[int], max_tokens: int, stopped_by_string: bool) -> tuple[list[int], str]:
        """Tokens the row really produced (through its EOS) and why it stopped."""
        for i, token in enumerate(generated):
            if token in self.eos_ids:
                return generated[: i + 1], "stop"
        if stopped_by_string:
            pad = self.tokenizer.pad_token_id
            end = len(generated)
            while end > 0 and generated[end - 1] == pad:
                end -= 1
            return generated[:end], "stop" if end < max_tokens else "length"
        return generated, "length"

    # ------------------------------------------------------------------ sampling

    def _generate_rows(self, rows: list[_Row], sampling: SamplingConfig) -> list[list[int]]:
        torch = self.torch
        from transformers import LogitsProcessorList

        input_ids, mask = self._pad([r.prompt_ids for r in rows])
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "max_new_tokens": sampling.max_tokens,
            "do_sample": False,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sampling.temperature > 0:
            kwargs["logits_processor"] = LogitsProcessorList(
                [_SeededSampler([r.seed for r in rows], sampling, self.device)]
            )
            # Silence the warpers generate() would otherwise take from generation_config.
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(**kwargs)
        return out[:, input_ids.shape[1] :].tolist()

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        """Rows (one per sample) in batches of ``batch_size``; each batch is yielded when done."""
        rows: list[_Row] = []
        for request in requests:
            ids = self._ids(request)
            rows.extend(_Row(request.problem_id, i, s, ids) for i, s in zip(request.sample_indices, request.seeds))
        start = 0
        batch_size = self.batch_size
        while start < len(rows):
            batch = rows[start : start + batch_size]
            clock = BatchClock()
            try:
                outputs = self._generate_rows(batch, sampling)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise EngineError(f"hf: generate failed: {type(exc).__name__}: {exc}") from exc
                free_accelerator()
                if batch_size > 1:  # halve and retry: a smaller batch often fits
                    batch_size = max(1, batch_size // 2)
                    continue
                raise EngineOutOfMemory(f"hf: out of memory even at batch size 1 on {self.device}: {exc}") from exc
            clock.stop()
            start += len(batch)
            yield self._result(batch, outputs, sampling, clock)

    def _result(
        self, batch: list[_Row], outputs: list[list[int]], sampling: SamplingConfig, clock: BatchClock
    ) -> BatchResult:
        completions = []
        for row, generated in zip(batch, outputs):
            ids, reason = self._cut(generated, sampling.max_tokens, bool(sampling.stop))
            completions.append(
                Completion(
                    problem_id=row.problem_id,
                    sample_index=row.sample_index,
                    seed=row.seed,
                    text=self.decode(ids),
                    prompt_tokens=len(row.prompt_ids),
                    completion_tokens=len(ids),
                    finish_reason=reason,
                    batch_id="",  # the batch's, set by batch_result
                    prefix_chars=prefix_chars(self.decode, ids),
                )
            )
        result = batch_result(self.name, completions, clock)
        self.report_progress(len(completions), result.timing.generated_tokens)
        return result

    # ------------------------------------------------------------------ throughput

    def timed_greedy(self, prompt_token_ids: list[list[int]], gen_len: int) -> TimedGeneration:
        torch = self.torch
        input_ids, mask = self._pad(prompt_token_ids)
        kwargs = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "do_sample": False,
            "max_new_tokens": gen_len,
            "min_new_tokens": gen_len,
            "pad_token_id": self.tokenizer.pad_token_id,
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        try:
            with torch.inference_mode():
                self._sync()
                t0 = time.perf_counter()
                out = self.model.generate(**kwargs)
                self._sync()
                wall = time.perf_counter() - t0
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            free_accelerator()
            raise EngineOutOfMemory(f"hf: out of memory at batch {len(prompt_token_ids)}: {exc}") from exc
        generated = int(out.shape[1] - input_ids.shape[1]) * int(out.shape[0])
        return TimedGeneration(
            batch_size=len(prompt_token_ids),
            prompt_len=int(input_ids.shape[1]),
            gen_len=gen_len,
            wall_seconds=wall,
            generated_tokens=generated,
        )

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def close(self) -> None:
        self.model = None
        free_accelerator()
