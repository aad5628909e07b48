"""m1eval's vllm and hf engines against the bare libraries, on the real SmolLM2-135M-Instruct.

The tiny random models of the other benchmarks stop at random lengths and have toy
shapes; this one uses real weights (the embedded ``smollm2-135m`` preset, converted once
into the user's cache). For each batch size B in 1, 8, 32, 64 the same B chat-templated
MATH500 prompts are decoded greedily for at most M new tokens by

- ``m1eval vllm``: ``VLLMEngine.generate`` (GenerationRequest -> Completion records with
  seeds, prefix offsets, batch timing) vs ``bare vllm``: one ``LLM.generate`` call on the
  same ``LLM`` with the same ``SamplingParams``;
- ``m1eval hf``: ``HFEngine.generate`` (left padding, EOS cut, decode, records) vs
  ``bare hf``: ``model.generate`` on the same padded batch plus ``batch_decode``.

Greedy decoding makes both sides of a pair produce the same tokens, so tokens/s compare
like with like. The two sides of a pair alternate, ``--repeats`` times each, and the
medians are compared. Target: m1eval/bare wall time <= 1.10. Model load is excluded.
On a shared CPU the numbers are noisy; rerun and look at the spread.

    PYTHONPATH=$PWD VLLM_CPU_KVCACHE_SPACE=1 nice -n 10 python benchmarks/real_cpu.py
    python benchmarks/real_cpu.py --batches 1 8 --max-tokens 32 --engines hf
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _median_pair(first: Callable[[], int], second: Callable[[], int], repeats: int) -> tuple[float, float, int, int]:
    """Alternate the two, return (median wall 1, median wall 2, tokens 1, tokens 2)."""
    walls: tuple[list[float], list[float]] = ([], [])
    tokens = [0, 0]
    for _ in range(repeats):
        for i, fn in enumerate((first, second)):
            t0 = time.perf_counter()
            tokens[i] = fn()
            walls[i].append(time.perf_counter() - t0)
    return statistics.median(walls[0]), statistics.median(walls[1]), tokens[0], tokens[1]


def _row(engine: str, batch: int, m_wall: float, b_wall: float, m_tok: int, b_tok: int) -> str:
    return (
        f"{engine:<5} {batch:>5} {m_tok / m_wall:>12.1f} {b_tok / b_wall:>12.1f} {m_wall:>9.2f} {b_wall:>9.2f} "
        f"{m_wall / b_wall:>7.3f}{'' if m_tok == b_tok else f'  (tokens {m_tok} vs {b_tok})'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", nargs="+", default=["vllm", "hf"], choices=["vllm", "hf"])
    parser.add_argument("--data-dir", default=os.environ.get("M1EVAL_DATA_DIR", str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

    from m1eval.engines.base import GenerationRequest
    from m1eval.models.embedded import ensure_smollm2
    from m1eval.models.presets import M1_SUFFIX
    from m1eval.models.prompts import load_tokenizer, render
    from m1eval.records import SamplingConfig
    from m1eval.tasks.loader import load_task

    folder = str(ensure_smollm2())
    tokenizer = load_tokenizer(folder)
    problems = load_task("math500", Path(args.data_dir))
    rendered = [render(tokenizer, p.question, M1_SUFFIX)[1] for p in problems[: max(args.batches)]]
    sampling = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=args.max_tokens)

    def requests(batch: int) -> list[GenerationRequest]:
        return [GenerationRequest(f"p{i}", "", [0], [i], prompt_token_ids=rendered[i]) for i in range(batch)]

    def m1eval_side(engine) -> Callable[[int], Callable[[], int]]:
        def make(batch: int) -> Callable[[], int]:
            reqs = requests(batch)
            return lambda: sum(c.completion_tokens for r in engine.generate(reqs, sampling) for c in r.completions)

        return make

    lines = []
    header = (
        f"{'eng':<5} {'batch':>5} {'m1eval tok/s':>12} {'bare tok/s':>12} {'m1eval s':>9} {'bare s':>9} {'ratio':>7}"
    )
    if "vllm" in args.engines:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from m1eval.engines.vllm import VLLMEngine

        t0 = time.perf_counter()
        engine = VLLMEngine(
            folder,
            options={
                "dtype": "float32",
                "enforce_eager": True,
                "max_model_len": 2048,
                "max_num_seqs": max(args.batches),
                "gpu_memory_utilization": 0.1,
            },
        )
        print(f"vllm load {time.perf_counter() - t0:.1f} s (excluded)", flush=True)
        make = m1eval_side(engine)
        for batch in args.batches:
            prompts = [TokensPrompt(prompt_token_ids=ids) for ids in rendered[:batch]]
            params = [
                SamplingParams(n=1, temperature=0.0, top_p=1.0, max_tokens=args.max_tokens, seed=i)
                for i in range(batch)
            ]

            def bare(prompts=prompts, params=params) -> int:
                outs = engine.llm.generate(prompts, params, use_tqdm=False)
                return sum(len(o.outputs[0].token_ids) for o in outs)

            make(batch)()  # warm-up of this batch shape
            lines.append(_row("vllm", batch, *_median_pair(make(batch), bare, args.repeats)))
            print(lines[-1], flush=True)
        engine.close()
    if "hf" in args.engines:
        import torch

        from m1eval.engines.hf import HFEngine

        t0 = time.perf_counter()
        engine = HFEngine(folder, options={"dtype": "float32", "batch_size": max(args.batches)})
        print(f"hf load {time.perf_counter() - t0:.1f} s (excluded)", flush=True)
        make = m1eval_side(engine)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        for batch in args.batches:
            rows = rendered[:batch]
            width = max(len(r) for r in rows)
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])

            def bare(ids=ids, mask=mask) -> int:
                with torch.inference_mode():
                    out = engine.model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        do_sample=False,
                        max_new_tokens=args.max_tokens,
                        pad_token_id=pad,
                        temperature=None,
                        top_p=None,
                        top_k=None,
                    )
                new = out[:, ids.shape[1] :]
                tokenizer.batch_decode(new, skip_special_tokens=True)
                eos = engine.eos_ids
                total = 0
                for row in new.tolist():  # count through the first EOS, as the engines do
                    cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
                    total += cut
                return total

            make(batch)()
            lines.append(_row("hf", batch, *_median_pair(make(batch), bare, args.repeats)))
            print(lines[-1], flush=True)
        engine.close()
    print(
        f"\nSmolLM2-135M-Instruct float32, greedy, <= {args.max_tokens} new tokens, median of {args.repeats}; "
        "ratio = m1eval wall / bare wall (target <= 1.10)"
    )
    print(header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
