"""M1 on CPU through both engines: the native `m1` engine against `vllm` with m1eval's M1 plugin.

Same checkpoint (a random M1-layout folder built here, or ``--model``), fp32, greedy, EOS
ignored, random prompt ids of one length: for each batch size one warm-up, then the mean of
``--repeats`` timed ``timed_greedy`` calls (what ``m1eval bench`` times). Prints generated
tokens/s of each engine side by side and vllm/m1, and whether the two engines' greedy tokens
agree on the largest batch. The vllm engine needs the plugin's entry point (``pip install -e .``).

    python benchmarks/m1_vllm_cpu.py [--model DIR] [--d-model 256] [--layers 8] [--batch-sizes 1,8,32] \
        [--prompt-len 64] [--gen 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from m1eval.cli.progress import make_progress  # noqa: E402


def build_checkpoint(folder: Path, d_model: int, layers: int) -> Path:
    from m1eval.models.tiny_hybrid import build_tiny_hybrid

    attention = tuple(range(2, layers, 3))  # one attention layer in three, as in M1-3B's sparse layout
    return build_tiny_hybrid(folder, d_model=d_model, n_layer=layers, attn_layers=attention, seed=1)


def measure(engine, prompts: list[list[int]], gen: int, repeats: int) -> float:
    engine.timed_greedy(prompts, gen)  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        timed = engine.timed_greedy(prompts, gen)
        rates.append(timed.generated_tokens / (time.perf_counter() - t0))
    return sum(rates) / len(rates)


def greedy_tokens(name: str, engine, prompts: list[list[int]], gen: int) -> list[list[int]]:
    if name == "m1":
        from m1eval.hybrid.generation import generate

        return [list(t) for t in generate(engine.model, prompts, max_new_tokens=gen, ignore_eos=True).tokens]
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = SamplingParams(temperature=0.0, max_tokens=gen, ignore_eos=True)
    outputs = engine.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--gen", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")]

    from m1eval.engines.m1 import M1Engine
    from m1eval.engines.vllm import VLLMEngine

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_checkpoint(Path(tmp) / "m1-small", args.d_model, args.layers)
        rng = random.Random(0)
        prompts = {b: [[rng.randrange(3, 500) for _ in range(args.prompt_len)] for _ in range(b)] for b in batches}
        builders = {
            "m1": lambda: M1Engine(str(folder), options={"dtype": "float32"}),
            "vllm": lambda: VLLMEngine(str(folder), options={
                "dtype": "float32", "max_model_len": args.prompt_len + args.gen + 16, "enforce_eager": True,
                "gpu_memory_utilization": 0.2, "max_num_seqs": max(batches)}),
        }  # fmt: skip
        rates: dict[str, dict[int, float]] = {}
        tokens: dict[str, list[list[int]]] = {}
        with make_progress() as progress:
            task = progress.add_task("timing", total=len(builders) * len(batches))
            for name, build in builders.items():
                engine = build()
                rates[name] = {}
                for batch in batches:
                    progress.update(task, description=f"{name} batch {batch}")
                    rates[name][batch] = measure(engine, prompts[batch], args.gen, args.repeats)
                    progress.advance(task)
                tokens[name] = greedy_tokens(name, engine, prompts[max(batches)], args.gen)
                engine.close()
    print(f"checkpoint {folder}: prompt {args.prompt_len}, {args.gen} new tokens, fp32, mean of {args.repeats}")
    print(f"{'batch':>6} {'m1 tok/s':>10} {'vllm tok/s':>11} {'vllm/m1':>8}")
    for batch in batches:
        m1, vllm = rates["m1"][batch], rates["vllm"][batch]
        print(f"{batch:>6} {m1:>10.1f} {vllm:>11.1f} {vllm / m1:>8.2f}")
    same = tokens["m1"] == tokens["vllm"]
    print(f"greedy tokens at batch {max(batches)}: {'identical' if same else 'DIFFERENT'} "
          f"({sum(len(t) for t in tokens['m1'])} per engine)")  # fmt: skip


if __name__ == "__main__":
    main()
