"""Replies that cannot be what was asked: longer than ``max_tokens`` allows.

An engine's reply is untrusted input. A broken or hostile OpenAI-compatible server can send
5 MB of text for a 32-token request, or claim more completion tokens than were allowed; a
local engine with a bad detokenizer could too. Such a sample is still stored (nothing a run
drew is thrown away, and the text may be what a reader needs to see what went wrong), but
never silently: the runner warns and records it in the manifest (``overlong``), and the
report repeats it.

The character bound is generous: no token of the common vocabularies decodes to more than
about 80 characters (SmolLM2's longest is 81, a run of ``#``), so a text longer than
``MAX_CHARS_PER_TOKEN`` characters per allowed token is not a decoding of ``max_tokens`` tokens.
"""

from __future__ import annotations

from typing import Any

from m1eval.records import Completion

MAX_CHARS_PER_TOKEN = 128


def overlong(completion: Completion, max_tokens: int) -> str | None:
    """Why ``completion`` is longer than ``max_tokens`` allows, or None when it is not."""
    reasons = []
    if completion.completion_tokens > max_tokens:
        reasons.append(f"{completion.completion_tokens:,} completion tokens")
    if len(completion.text) > MAX_CHARS_PER_TOKEN * max_tokens:
        reasons.append(f"{len(completion.text):,} characters")
    return " and ".join(reasons) + f" for max_tokens {max_tokens:,}" if reasons else None


def overlong_record(completion: Completion, max_tokens: int, why: str) -> dict[str, Any]:
    """What the manifest keeps of one overlong reply (``manifest["overlong"]``)."""
    return {
        "problem_id": completion.problem_id,
        "sample_index": completion.sample_index,
        "batch_id": completion.batch_id,
        "characters": len(completion.text),
        "completion_tokens": completion.completion_tokens,
        "max_tokens": max_tokens,
        "why": why,
    }
