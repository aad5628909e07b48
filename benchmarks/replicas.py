"""Wall time of one engine in one process, as 1 Ray replica and as N Ray replicas, and Ray's cost per chunk.

A fixed run (the first P problems of a task, K samples each, at most M new tokens,
transformers engine on a tiny random Qwen2 unless --model is given) goes through
``runner.generate`` three ways, each into a fresh run folder:

- ``process``: the engine in this process (no Ray; as many torch threads as one replica);
- ``1 replica``: a ``ReplicaPool`` with one actor (``--cpus-per-replica`` CPUs);
- ``N replicas``: a pool with N actors.

Pool start-up (Ray, actor processes, model loads) is timed apart from generation, as
a real run pays it once. All three must store the same texts (checked). Then the Ray
overhead per chunk: C one-sample chunks with max 1 new token, run in process and on a
1-replica pool; (pool time - process time) / C is what handing a chunk to an actor and
streaming its batch back costs.

    python benchmarks/replicas.py                        # tiny Qwen2, 8 problems x 4 samples x 64 tokens
    python benchmarks/replicas.py --replicas 2 --problems 16 --k 8 --max-tokens 128

On a shared machine the numbers move with the other load; run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _texts(run_dir: Path) -> dict:
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {(r["problem_id"], r["sample_index"]): r["text"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: a tiny random Qwen2 built in a temp dir)")
    parser.add_argument("--engine", default="hf", choices=["hf", "m1", "vllm"])
    parser.add_argument("--task", default="aime25")
    parser.add_argument("--data-dir", default=os.environ.get("M1EVAL_DATA_DIR", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cpus-per-replica", type=float, default=1.0)
    parser.add_argument("--chunk-size", type=int, default=None, help="samples per chunk (default: the pool's)")
    parser.add_argument("--overhead-chunks", type=int, default=40)
    parser.add_argument(
        "--process-threads",
        type=int,
        default=None,
        help="torch threads of the in-process run (default: --cpus-per-replica, as each replica gets)",
    )
    parser.add_argument("-o", "--option", action="append", default=[], help="engine option key=value (JSON value)")
    args = parser.parse_args()

    from m1eval.cli.progress import RunProgress
    from m1eval.engines import engine_class
    from m1eval.engines.replicas import ReplicaPool, ReplicaSettings, import_ray
    from m1eval.pipeline.runner import RunConfig, generate, plan_run

    view = RunProgress()
    work = Path(tempfile.mkdtemp(prefix="m1eval-replicas-"))
    model = args.model
    if model is None:
        from m1eval.models.tiny import build_tiny_qwen2

        model = str(build_tiny_qwen2(work / "tiny-qwen2"))
    options: dict = {"batch_size": 4} if args.engine == "hf" else {}
    for item in args.option:
        key, _, raw = item.partition("=")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw

    def config(name: str, k: int, problems: int, max_tokens: int, chunk: int | None, task: str) -> RunConfig:
        return RunConfig(model=model, engine=args.engine, task=task, k=k, limit=problems, max_tokens=max_tokens,
                         temperature=0.8, data_dir=Path(args.data_dir), out=work / name, engine_options=dict(options),
                         chunk_size=chunk)  # fmt: skip

    def timed_run(
        name: str, engine, k=args.k, problems=args.problems, max_tokens=args.max_tokens, chunk=None, task=args.task
    ):
        plan = plan_run(config(name, k, problems, max_tokens, chunk, task))
        t0 = time.perf_counter()
        outcome = generate(plan, engine=engine, observer=view)
        wall = time.perf_counter() - t0
        assert outcome.state == "done", outcome.message
        return wall, _texts(outcome.path)

    ray = import_ray()
    t0 = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray_start = time.perf_counter() - t0
    cores = int(ray.cluster_resources().get("CPU", 0))

    import torch

    # as many threads as one replica: two threads on a busy 2-core machine made the in-process
    # run 30x slower than one (OpenMP threads waiting on each other), which measures nothing useful
    torch.set_num_threads(args.process_threads or max(1, int(args.cpus_per_replica)))
    t0 = time.perf_counter()
    local = engine_class(args.engine)(model, options=dict(options))
    local_start = time.perf_counter() - t0
    process_wall, reference = timed_run("process", local, chunk=args.chunk_size)

    # Ray's cost per chunk (measured on the 1-replica pool below): one sample, one new token per chunk
    c = args.overhead_chunks
    overhead_local, _ = timed_run("overhead-process", local, k=1, problems=c, max_tokens=1, chunk=1, task="math500")
    local.close()
    overhead_pool = float("nan")

    walls: dict[int, float] = {}
    starts: dict[int, float] = {}
    threads: dict[int, list] = {}
    for n in sorted({1, args.replicas}):  # one pool at a time: each takes its CPUs from Ray
        t0 = time.perf_counter()
        pool = ReplicaPool(args.engine, model, dict(options), ReplicaSettings(n, cpus_per_replica=args.cpus_per_replica),
                           chunk_size=args.chunk_size, on_notice=view.notice, on_status=view.status)  # fmt: skip
        starts[n] = time.perf_counter() - t0
        threads[n] = [r.get("torch_threads") for r in pool.replica_info()]
        try:
            walls[n], texts = timed_run(f"replicas-{n}", pool, chunk=args.chunk_size)
            if n == 1:
                pool.chunk_size = 1
                overhead_pool, _ = timed_run(
                    "overhead-pool", pool, k=1, problems=c, max_tokens=1, chunk=1, task="math500"
                )
        finally:
            pool.close()
        if texts != reference:
            raise SystemExit(f"{n} replicas stored texts that differ from the in-process run")
    ray.shutdown()

    samples = args.problems * args.k
    n = args.replicas
    print(f"\nreplicas benchmark: {args.engine} {Path(model).name}, {args.problems} problems x {args.k} samples x "
          f"<= {args.max_tokens} tokens ({samples} samples), options {options}, Ray {ray.__version__}, "
          f"{cores} CPUs seen by Ray, {os.getloadavg()[0]:.1f} load (1 min) at the end")  # fmt: skip
    print(f"{'setup':<14}{'start-up s':>12}{'generate s':>12}{'samples/s':>11}{'vs process':>12}{'vs 1 replica':>14}"
          f"  torch threads")  # fmt: skip
    rows = [("process", local_start, process_wall, [torch.get_num_threads()])] + [
        (f"{m} replica{'s' if m > 1 else ''}", starts[m], walls[m], threads[m]) for m in sorted(walls)
    ]
    for name, start, wall, thr in rows:
        print(f"{name:<14}{start:>12.1f}{wall:>12.2f}{samples / wall:>11.2f}{process_wall / wall:>11.2f}x"
              f"{walls[1] / wall:>13.2f}x  {thr}")  # fmt: skip
    print(f"local Ray start: {ray_start:.1f} s (once per run)")
    print(
        f"{n} replicas vs 1 replica: {walls[1] / walls[n]:.2f}x faster generation "
        f"(ideal {min(n, cores / args.cpus_per_replica):.0f}x on {cores} CPUs)"
    )
    print(
        f"Ray overhead per chunk: {(overhead_pool - overhead_local) / c * 1000:.1f} ms "
        f"({c} one-sample, one-token chunks: {overhead_pool:.2f} s on 1 replica vs {overhead_local:.2f} s in process)"
    )


if __name__ == "__main__":
    main()
