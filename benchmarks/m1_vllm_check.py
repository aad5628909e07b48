"""The prepared device check of the M1 vLLM plugin: `--engine vllm` on an M1 folder against the native model.

Builds a random M1-layout checkpoint (head size 64; x/B groups repeated 4x), runs it through
``VLLMEngine`` on the chosen Mamba path (``kernels`` = vLLM's CUDA ops, the path that has not
run on a GPU yet; ``torch`` = the CPU reference path) and compares greedy tokens and top-5
logprobs with ``m1eval.hybrid`` in fp32 on the CPU, over mixed prompt lengths, chunked prefill
(a small token budget) and prefix caching. Prints the agreement and writes it as JSON.

    python benchmarks/m1_vllm_check.py --path kernels [--dtype float32] [--out m1_vllm_check.json]
    python benchmarks/m1_vllm_check.py --path torch    # on CPU, the same comparison the tests make

Pass: fp32 -> identical greedy tokens and max relative logprob difference < 1e-4 (TF32 is off);
bf16 -> reported only (bf16 rounding makes greedy paths diverge on a random model).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=("kernels", "torch"), required=True)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("m1_vllm_check.json"))
    args = parser.parse_args()

    import torch

    from m1eval.engines.vllm import VLLMEngine
    from m1eval.hybrid import load_hybrid
    from m1eval.hybrid.vllm_plugin.agreement import compare
    from m1eval.models.tiny_hybrid import build_tiny_hybrid

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_hybrid(Path(tmp) / "m1", d_model=256, n_layer=6, attn_layers=(2, 5), seed=7)
        native = load_hybrid(folder, "cpu", torch.float32)
        engine = VLLMEngine(str(folder), options={
            "dtype": args.dtype, "max_model_len": 1024, "max_num_seqs": 8, "max_num_batched_tokens": 64,
            "enable_chunked_prefill": True, "enable_prefix_caching": True, "block_size": 32,
            "gpu_memory_utilization": 0.2 if args.path == "torch" else 0.3,
            "hf_overrides": {"m1eval_mamba_path": args.path},
        })  # fmt: skip
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        rng = random.Random(0)
        shared = [rng.randrange(3, 500) for _ in range(70)]
        prompts = [[rng.randrange(3, 500) for _ in range(n)] for n in (3, 17, 40, 150)]
        prompts += [[*shared, 5, 6], [*shared, 7, 8, 9]]  # the last one hits the one before's cached prefix
        params = SamplingParams(temperature=0.0, max_tokens=args.new_tokens, ignore_eos=True, logprobs=5)
        run = lambda batch: engine.llm.generate([TokensPrompt(prompt_token_ids=p) for p in batch], params,
                                                use_tqdm=False)  # fmt: skip
        outputs = run(prompts[:-1]) + run(prompts[-1:])  # mixed lengths in one batch, then the prefix-cache hit
        result = compare(native, prompts, outputs)
        report = {
            "path": args.path, "dtype": args.dtype, "tokens_compared": result.tokens_compared,
            "max_rel_logprob_diff": result.max_rel_logprob_diff, "first_mismatch": result.first_mismatch,
            "cached_prompt_tokens": [o.num_cached_tokens for o in outputs],
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "effective_options": engine.options,
        }  # fmt: skip
        engine.close()
    passed = result.first_mismatch is None and result.max_rel_logprob_diff < 1e-4
    report["pass"] = passed if args.dtype in ("float32", "fp32") else None
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "effective_options"}, default=str))


if __name__ == "__main__":
    main()
