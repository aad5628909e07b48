"""Prompts: question + the preset's instruction, rendered through the tokenizer's chat template.

The rendered text (and its token ids) is built once by the runner, so every engine sees
exactly the same tokens and a run can record a hash of the template it used. How the
question and the instruction are joined is part of a paper's protocol (the M1 evaluation
joins with one space, and for AIME25 with a blank line after the stripped question), so
it is a named choice (``JOINS``) recorded in the manifest, not a fixed newline.
"""

from __future__ import annotations

import hashlib
from typing import Any


class PromptError(Exception):
    """The tokenizer cannot be loaded or has no chat template."""


# name -> the user turn as a format string over the question and the instruction; the
# strings are what the manifest records, and ``user_message`` implements exactly them.
JOINS: dict[str, str] = {
    "newline": "{question.strip()}\n{instruction}",  # m1eval's default (R1 usage notes: instruction in the user turn)
    "space": "{question} {instruction}",  # M1 eval: f"{question} {instruction}", the question as stored
    "blank_line": "{question.strip()}\n\n{instruction}",  # M1 eval's AIME25 data script
}


def user_message(question: str, suffix: str, join: str = "newline") -> str:
    """The user turn: the question, then the instruction, joined as ``JOINS[join]`` says.

    The DeepSeek-R1 usage notes put the instruction inside the user turn, after the
    question; an empty instruction leaves the stripped question alone.
    """
    if join not in JOINS:
        raise PromptError(f"unknown join {join!r}; choose one of {', '.join(JOINS)}")
    if not suffix:
        return question.strip()
    if join == "space":
        return f"{question} {suffix}"
    separator = "\n\n" if join == "blank_line" else "\n"
    return f"{question.strip()}{separator}{suffix}"


def load_tokenizer(path: str, revision: str | None = None) -> Any:
    """The model's tokenizer; without the hub, only from the local cache, failing at once (``m1eval.hub``)."""
    from m1eval import hub

    offline = None if hub.is_local(path) else hub.offline_reason()

    def not_cached() -> PromptError:
        return PromptError(
            f"cannot load the tokenizer of {path!r}: {offline}, and it is not in the local cache; {hub.MODEL_HINT}"
        )

    if offline and not any(hub.in_cache(path, name, revision) for name in ("tokenizer_config.json", "tokenizer.json")):
        raise not_cached()  # before importing transformers (seconds)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, revision=revision, local_files_only=offline is not None)
    except Exception as exc:  # transformers raises OSError/ValueError/HF errors with useful text
        if offline:
            raise not_cached() from exc
        raise PromptError(f"cannot load the tokenizer of {path!r}: {exc}") from exc


def template_hash(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = repr(sorted(template.items()))
    return hashlib.sha256(str(template).encode("utf-8")).hexdigest()[:16]


def render(tokenizer: Any, question: str, suffix: str, join: str = "newline") -> tuple[str, list[int]]:
    """Prompt text and token ids; the template already holds BOS, so no special tokens are added."""
    if not getattr(tokenizer, "chat_template", None):
        raise PromptError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; "
            "m1eval prompts chat models through their template"
        )
    messages = [{"role": "user", "content": user_message(question, suffix, join)}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text, list(ids)
