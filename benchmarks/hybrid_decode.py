"""Decode speed on CPU: the M1-style hybrid against a transformers Llama of the same width and depth.

Both models are random-weight, fp32, built in this process with the same d_model,
layers, heads, KV heads and MLP width; the hybrid turns all but a few layers into Mamba
mixers (attn_every: one attention layer in that many). For each context length the
prompt is prefilled once and then ``--gen`` tokens are decoded greedily (EOS ignored);
only decode time is counted. Prints tokens/s of each and the hybrid/Llama ratio: the
hybrid's per-token cost is flat in context length for its Mamba layers, while every
Llama layer reads a KV cache that grows with it.

    python benchmarks/hybrid_decode.py [--d-model 512] [--layers 8] [--batch 4] [--contexts 128,512,2048] [--gen 32]
"""

from __future__ import annotations

import argparse
import time

import torch

from m1eval.cli.progress import make_progress
from m1eval.hybrid.config import HybridConfig
from m1eval.hybrid.generation import generate
from m1eval.hybrid.model import HybridForCausalLM


def build_models(args):
    from transformers import LlamaConfig, LlamaForCausalLM

    heads, kv_heads, head_dim = args.d_model // 64, max(1, args.d_model // 256), 64
    attn = tuple(range(1, args.layers, args.attn_every))
    hybrid = HybridForCausalLM(HybridConfig(
        vocab_size=args.vocab, d_model=args.d_model, d_inner=args.d_model, d_xb=kv_heads * head_dim,
        n_layer=args.layers, attn_layers=attn, intermediate_size=2 * args.d_model, num_attention_heads=heads,
        num_key_value_heads=kv_heads, head_dim=head_dim,
    )).eval()  # fmt: skip
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.d_model, intermediate_size=2 * args.d_model,
        num_hidden_layers=args.layers, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
        max_position_embeddings=max(args.contexts) + args.gen + 8, attn_implementation="sdpa",
    )).eval()  # fmt: skip
    return hybrid, llama, attn


def hybrid_decode_seconds(model, prompts, gen: int) -> float:
    result = generate(model, prompts, max_new_tokens=gen + 1, ignore_eos=True)
    return result.decode_seconds  # gen decode steps after the prefill's token


@torch.inference_mode()
def llama_decode_seconds(model, prompts, gen: int) -> float:
    from transformers import DynamicCache

    ids = torch.tensor(prompts)
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=ids, past_key_values=cache, use_cache=True).logits[:, -1]
    token = logits.argmax(-1, keepdim=True)
    start = time.perf_counter()
    for _ in range(gen):
        logits = model(input_ids=token, past_key_values=cache, use_cache=True).logits[:, -1]
        token = logits.argmax(-1, keepdim=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--attn-every", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--contexts", type=lambda s: [int(x) for x in s.split(",")], default=[128, 512, 2048])
    parser.add_argument("--gen", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hybrid, llama, attn = build_models(args)
    print(f"d_model {args.d_model}, {args.layers} layers (hybrid attention layers {list(attn)}), batch {args.batch}, "
          f"{args.gen} decode tokens per row, fp32, {args.threads} threads")  # fmt: skip
    rows = []
    with make_progress("configs") as progress:
        bar = progress.add_task("decode", total=len(args.contexts))
        for context in args.contexts:
            prompts = torch.randint(0, args.vocab, (args.batch, context)).tolist()
            hybrid_decode_seconds(hybrid, [p[:16] for p in prompts], 4)  # warm-up
            llama_decode_seconds(llama, [p[:16] for p in prompts], 4)
            h = hybrid_decode_seconds(hybrid, prompts, args.gen)
            t = llama_decode_seconds(llama, prompts, args.gen)
            tokens = args.batch * args.gen
            rows.append((context, tokens / h, tokens / t))
            progress.advance(bar)
    print(f"{'context':>8} {'hybrid tok/s':>13} {'llama tok/s':>12} {'hybrid/llama':>13}")
    for context, h, t in rows:
        print(f"{context:>8} {h:>13.1f} {t:>12.1f} {h / t:>12.2f}x")


if __name__ == "__main__":
    main()
