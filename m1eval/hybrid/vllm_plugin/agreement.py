"""The plugin's correctness check: vLLM's greedy tokens and top-k logprobs against the native model.

Used by the CPU tests (``tests/test_vllm_m1_agreement.py``) and by the prepared GPU check
(``benchmarks/m1_vllm_check.py``), so both judge agreement by one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Agreement:
    """Greedy tokens compared one for one and the max relative logprob difference over top-k entries."""

    tokens_compared: int
    max_rel_logprob_diff: float
    first_mismatch: tuple[int, int] | None  # (prompt index, token index)


def native_greedy(model, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    from m1eval.hybrid.generation import generate

    result = generate(model, prompts, max_new_tokens=new_tokens, seeds=list(range(len(prompts))), ignore_eos=True)
    return [list(row) for row in result.tokens]


@torch.inference_mode()
def native_logprobs(model, prompt: list[int], generated: list[int]) -> torch.Tensor:
    """(len(generated), vocab) log-softmax of the native model at each generated position (teacher forced)."""
    ids = torch.tensor([prompt + generated], dtype=torch.long)
    logits = model(ids).logits[0, len(prompt) - 1 : len(prompt) + len(generated) - 1]
    return torch.log_softmax(logits.double(), dim=-1)


def compare(model, prompts: list[list[int]], outputs) -> Agreement:
    """vLLM ``RequestOutput``s (greedy, ``logprobs=k``) against the native model on the same prompts.

    Relative difference of a logprob: |vllm - native| / max(|native|, 1) (a floor of 1 nat keeps
    near-certain tokens, logprob ~ 0, from dividing by ~0).
    """
    reference = native_greedy(model, prompts, max(len(o.outputs[0].token_ids) for o in outputs))
    compared, worst, mismatch = 0, 0.0, None
    for row, (prompt, output, expected) in enumerate(zip(prompts, outputs, reference)):
        got = list(output.outputs[0].token_ids)
        for i, (a, b) in enumerate(zip(got, expected)):
            if a != b and mismatch is None:
                mismatch = (row, i)
        if mismatch is not None and mismatch[0] == row:
            got = got[: mismatch[1]]  # after a divergence the texts differ; logprobs compare up to it
        native = native_logprobs(model, prompt, got)
        for i, entries in enumerate((output.outputs[0].logprobs or [])[: len(got)]):
            for token, entry in entries.items():
                ref = float(native[i, token])
                worst = max(worst, abs(entry.logprob - ref) / max(abs(ref), 1.0))
        compared += len(got)
    return Agreement(compared, worst, mismatch)
