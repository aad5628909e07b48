"""Page times of ``m1eval view`` on a large run: 500 problems x 64 samples with long texts.

Targets (issue 26): the run page under 1 s, a problem page under 300 ms, memory bounded
(texts are read only for the problem shown). Measured side by side, each in its own
process so peak memory is its own:

- ``report-load``: ``load_run(with_text=False)``, how ``m1eval report`` reads a run (all texts
  pass through memory, then are dropped);
- ``view``: the viewer's start as ``m1eval view`` does it (``Catalog``: ``load_run(text_offsets=True)``,
  the report's summary and the run page's per-problem table), then, through the ASGI app (Starlette's test client): the runs page, the run page
  cold (its per-problem table computed) and warm, 20 problem pages each opened for the first
  time, and one long text loaded on demand.

    python benchmarks/view_speed.py                 # writes the run under /tmp/m1eval-view-bench (once)
    python benchmarks/view_speed.py --chars 4000    # shorter texts
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORDS = (
    "let",
    "us",
    "consider",
    "the",
    "sum",
    "of",
    "all",
    "terms",
    "so",
    "x",
    "=",
    "3",
    "\\frac{1}{2}",
    "then",
    "we",
    "check",
    "case",
    "n",
    "+",
    "1",
    "and",
    "find",
    "that",
    "it",
    "works",
    "hence",
)


def long_text(seed: int, chars: int, tail: str) -> str:
    """Deterministic filler of ``chars`` characters: a thinking part, then the original ending."""
    words, i, size = [], seed, 0
    while size < chars:
        i = (i * 1103515245 + 12345) & 0x7FFFFFFF
        w = WORDS[i % len(WORDS)]
        words.append(w)
        size += len(w) + 1
    body = " ".join(words)
    cut = len(body) * 3 // 4
    return f"<think>{body[:cut]}</think>{body[cut:]} {tail}"


def make_run(out: Path, chars: int) -> Path:
    from m1eval.rundir.store import SAMPLES
    from m1eval.rundir.synthetic import make_synthetic_run

    run = out / "aime25" / "big" / "synthetic-s0"
    if (run / "grades.parquet").exists():
        return run
    path = make_synthetic_run(out, model="big", n_problems=500, n_samples=64, seed=0)
    src = path / SAMPLES
    tmp = path / "samples.tmp"
    with src.open(encoding="utf-8") as read, tmp.open("w", encoding="utf-8") as write:
        for n, line in enumerate(read):
            row = json.loads(line)
            # each text about `chars` long on average, up to 4x (tokens ~ Gamma with mean 2000)
            row["text"] = long_text(n, int(chars * row["completion_tokens"] / 2000), row["text"][-40:])
            write.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(src)
    return path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_report_load(run: Path) -> dict:
    from m1eval.rundir.rundata import load_run

    t = time.perf_counter()
    load_run(run, with_text=False)
    return {"load_s": time.perf_counter() - t, "peak_mb": peak_mb()}


def child_view(run: Path) -> dict:
    from starlette.testclient import TestClient

    from m1eval.view.assemble import problem_rows
    from m1eval.view.catalog import Catalog
    from m1eval.view.pages import Site
    from m1eval.view.server import create_app

    t = time.perf_counter()
    catalog = Catalog([run], prepare=problem_rows)  # as `m1eval view` starts
    start_s = time.perf_counter() - t
    site = Site(catalog)
    site.forms.warm()
    key = next(iter(catalog.slots))
    out = {"start_s": start_s, "after_start_mb": peak_mb()}

    def timed(client, path: str) -> tuple[float, int]:
        t = time.perf_counter()
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        return time.perf_counter() - t, len(response.content)

    try:
        with TestClient(create_app(site)) as client:
            out["runs_page_s"], _ = timed(client, "/")
            out["run_page_cold_s"], out["run_page_bytes"] = timed(client, f"/runs/{key}/index.html")
            out["run_page_warm_s"], _ = timed(client, f"/runs/{key}/index.html")
            times, sizes = [], []
            for i in range(0, 500, 25):  # 20 problems, each opened for the first time
                s, size = timed(client, f"/runs/{key}/p/{i}.html")
                times.append(s)
                sizes.append(size)
            out["problem_page_median_s"], out["problem_page_max_s"] = statistics.median(times), max(times)
            out["problem_page_bytes"] = int(statistics.median(sizes))
            out["text_on_demand_s"], out["text_bytes"] = timed(client, f"/runs/{key}/p/7/s3.json")
    finally:
        site.close()
    out["peak_mb"] = peak_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/m1eval-view-bench"))
    parser.add_argument("--chars", type=int, default=12_000, help="mean characters per completion")
    parser.add_argument("--child", choices=("report-load", "view"))
    parser.add_argument("--run", type=Path)
    args = parser.parse_args()
    if args.child:
        result = (child_report_load if args.child == "report-load" else child_view)(args.run)
        print(json.dumps(result))
        return
    t = time.perf_counter()
    run = make_run(args.out, args.chars)
    size = (run / "samples.jsonl").stat().st_size
    print(
        f"run: {run} (500 x 64 samples, samples.jsonl {size / 1e6:,.0f} MB; ready in {time.perf_counter() - t:.1f} s)"
    )
    results = {}
    for mode in ("report-load", "view"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--run", str(run)],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        )
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    r, v = results["report-load"], results["view"]
    print(f"{'':34}{'seconds':>10}{'peak MB':>10}")
    print(f"{'report: load_run(with_text=False)':34}{r['load_s']:>10.2f}{r['peak_mb']:>10.0f}")
    print(f"{'view: start (index, summary, table)':34}{v['start_s']:>10.2f}{v['after_start_mb']:>10.0f}")
    rows = [
        ("runs page", v["runs_page_s"], None),
        ("run page, first open", v["run_page_cold_s"], 1.0),
        ("run page, again", v["run_page_warm_s"], 1.0),
        ("problem page, median of 20", v["problem_page_median_s"], 0.3),
        ("problem page, slowest of 20", v["problem_page_max_s"], 0.3),
        ("one long text on demand", v["text_on_demand_s"], None),
    ]
    print(f"\n{'page':34}{'seconds':>10}{'target':>10}{'within':>8}")
    for name, seconds, target in rows:
        print(
            f"{name:34}{seconds:>10.3f}{'' if target is None else f'< {target:g} s':>10}"
            f"{'' if target is None else ('yes' if seconds < target else 'NO'):>8}"
        )
    print(
        f"\nrun page {v['run_page_bytes'] / 1e3:,.0f} kB, problem page {v['problem_page_bytes'] / 1e3:,.0f} kB, "
        f"text {v['text_bytes'] / 1e3:,.0f} kB; viewer peak memory {v['peak_mb']:,.0f} MB "
        f"({v['peak_mb'] / r['peak_mb']:.2f}x report's load)"
    )


if __name__ == "__main__":
    main()
