"""Helpers for the M1-in-vLLM tests: the plugin's entry point, the native reference, the comparison.

The entry point: ``pip install -e .`` (CI) registers ``vllm.general_plugins: m1`` from
pyproject.toml. A development checkout whose installed metadata predates the plugin lacks it;
``ensure_plugin_entry_point`` then writes a throwaway ``*.dist-info`` holding only that entry
point into a temp folder and puts the folder on ``sys.path`` and ``PYTHONPATH`` (vLLM's own
subprocesses and the CLI's read it there), so the tests still load the plugin the way vLLM
does, through ``importlib.metadata`` and not by calling ``register()``.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from m1eval.engines.vllm import PLUGIN_GROUP, PLUGIN_TARGET, plugin_registered


def ensure_plugin_entry_point(folder: Path) -> None:
    if plugin_registered():
        return
    info = folder / "m1eval_vllm_plugin_local-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: m1eval-vllm-plugin-local\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\nm1 = {PLUGIN_TARGET}\n")
    sys.path.insert(0, str(folder))
    repo = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), repo, os.environ.get("PYTHONPATH")) if p)
    importlib.invalidate_caches()
    assert plugin_registered()


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
