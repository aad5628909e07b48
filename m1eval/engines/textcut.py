"""Prefix offsets that agree with the text an engine returned.

A server's (or vLLM's incremental) detokeniser can differ from ``tokenizer.decode`` at
the edges: a trailing incomplete UTF-8 byte sequence, a removed stop string. The
sequential-scaling analysis cuts the *stored* text, so offsets are clamped to it and
the full length is the stored text's length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from m1eval.engines.base import prefix_chars


def text_prefix_chars(decode: Callable[[list[int]], str], token_ids: Sequence[int], text: str) -> dict[str, int]:
    offsets = {key: min(value, len(text)) for key, value in prefix_chars(decode, token_ids).items()}
    offsets[str(len(token_ids))] = len(text)
    return offsets
