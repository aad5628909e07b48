"""Overhead of `m1eval run`'s vLLM path over bare ``LLM.generate``, after model load.

Both paths get the same requests: the chat-templated prompts of the first P problems
of a task, K samples each, one ``n=1`` request per sample with its own seed
(``sample_seed``), max M new tokens. The bare path is a single ``LLM.generate`` call;
the m1eval path is ``runner.generate`` (planning, chunking, progress bar, prefix
offsets, fsynced appends to a fresh run folder) on the same ``VLLMEngine``. The two
alternate, R repeats each, and the medians are compared; target ratio <= 1.10.

For reference it also times bare ``SamplingParams(n=K)`` (one request per problem,
all K samples from one seed), the batching m1eval gives up for per-sample seeds.

    python benchmarks/run_overhead.py                 # tiny random Qwen2 built in a temp dir
    python benchmarks/run_overhead.py --model PATH --problems 30 --k 16 --max-tokens 1024
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder or hub id (default: a tiny random Qwen2)")
    parser.add_argument("--task", default="aime25")
    parser.add_argument("--data-dir", default=os.environ.get("M1EVAL_DATA_DIR", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.2)
    args = parser.parse_args()

    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from m1eval.cli.progress import RunProgress
    from m1eval.engines.vllm import VLLMEngine
    from m1eval.models.prompts import render
    from m1eval.pipeline.runner import RunConfig, generate, plan_run
    from m1eval.pipeline.seeding import sample_seed

    work = Path(tempfile.mkdtemp(prefix="m1eval-overhead-"))
    model = args.model
    if model is None:
        from m1eval.models.tiny import build_tiny_qwen2

        model = str(build_tiny_qwen2(work / "tiny-qwen2", hidden_size=256, layers=4))
    options = {
        "max_model_len": args.max_model_len,
        "dtype": "float32",
        "enforce_eager": True,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_num_seqs": 256,
    }
    config = {
        "model": model,
        "engine": "vllm",
        "task": args.task,
        "k": args.k,
        "limit": args.problems,
        "data_dir": Path(args.data_dir),
        "max_tokens": args.max_tokens,
        "temperature": 0.6,
        "top_p": 0.95,
        "engine_options": options,
    }

    t0 = time.perf_counter()
    engine = VLLMEngine(model, options=options)
    print(f"model load: {time.perf_counter() - t0:.1f} s (excluded from the comparison)")
    plan = plan_run(RunConfig(**config, out=work / "probe"))
    rendered = [render(engine.tokenizer, p.question, plan.suffix)[1] for p in plan.problems]

    def bare() -> int:
        prompts, params = [], []
        for problem, ids in zip(plan.problems, rendered):
            for i in range(args.k):
                prompts.append(TokensPrompt(prompt_token_ids=ids))
                params.append(
                    SamplingParams(
                        temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, seed=sample_seed(0, problem.id, i)
                    )
                )
        outputs = engine.llm.generate(prompts, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    def bare_n() -> int:
        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in rendered]
        params = [
            SamplingParams(
                n=args.k, temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, seed=sample_seed(0, p.id, 0)
            )
            for p in plan.problems
        ]
        outputs = engine.llm.generate(prompts, params, use_tqdm=False)
        return sum(len(s.token_ids) for o in outputs for s in o.outputs)

    def m1eval_path(rep: int) -> int:
        outcome = generate(
            plan_run(RunConfig(**config, out=work / f"rep{rep}")), engine=engine, observer=RunProgress()
        )  # the bar is part of the measured path
        assert outcome.state == "done", outcome.message
        from m1eval.rundir.store import RunStore

        samples, _ = RunStore(outcome.path).read_samples()
        return sum(c.completion_tokens for c in samples)

    bare()  # warm-up: first batch pays one-off allocation costs
    times: dict[str, list[float]] = {"bare LLM.generate": [], "m1eval run (vllm engine)": [], "bare n=k": []}
    tokens: dict[str, int] = {}
    for rep in range(args.repeats):
        for name, fn in (
            ("bare LLM.generate", bare),
            ("m1eval run (vllm engine)", lambda rep=rep: m1eval_path(rep)),
            ("bare n=k", bare_n),
        ):
            start = time.perf_counter()
            tokens[name] = fn()
            times[name].append(time.perf_counter() - start)
    engine.close()

    print(
        f"\n{args.problems} problems x k={args.k}, max {args.max_tokens} new tokens, {args.repeats} repeats, model {model}"
    )
    print(f"{'path':28s} {'median s':>9s} {'min s':>7s} {'tokens':>7s} {'tok/s':>8s}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:28s} {med:9.3f} {min(values):7.3f} {tokens[name]:7d} {tokens[name] / med:8.0f}")
    ratio = statistics.median(times["m1eval run (vllm engine)"]) / statistics.median(times["bare LLM.generate"])
    same = tokens["m1eval run (vllm engine)"] == tokens["bare LLM.generate"]
    print(
        f"\nwall-time ratio m1eval / bare = {ratio:.3f} (target <= 1.10: {'PASS' if ratio <= 1.10 else 'FAIL'}); "
        f"identical token counts: {same}"
    )
    n_ratio = statistics.median(times["bare LLM.generate"]) / statistics.median(times["bare n=k"])
    print(f"per-sample seeded requests / n=k requests = {n_ratio:.3f}")


if __name__ == "__main__":
    main()
