"""Memory and time of the later stages on MATH500-sized run folders whose texts grow (issue 25).

Writes synthetic graded run folders (500 problems x 64 samples, through
``m1eval.rundir.synthetic.make_synthetic_run``) that differ only in the length of their
completion texts, then runs each verb on each folder as a subprocess and prints its wall
time, CPU time and peak resident memory (``wait4`` of that one child: its CPU time counts the
workers it reaped, its peak is the largest of the verb's process and those workers), and the
ratio between the text lengths.

    PYTHONPATH=$PWD python benchmarks/analysis_scale.py --folder /tmp/scale [--chars 5000 20000 80000]
    PYTHONPATH=$PWD python benchmarks/analysis_scale.py --folder /tmp/scale --code /old/checkout
    PYTHONPATH=$PWD python benchmarks/analysis_scale.py --folder /tmp/scale --code /old --code . --repeat 2

``--code`` runs the verbs from another checkout (the code before a change) on the same
folders; given twice it measures both, in turns (each verb once per checkout, then again),
so a busy spell of a shared machine slows both alike; ``--repeat N`` keeps the fastest of N.
Derived files a verb leaves in a run folder (``samples_meta.parquet``) are removed before
``report (cold)``, so the first report of each folder pays for building them, and
``report (warm)`` shows what every later one costs. Targets (issue 25) on the 20,000-char
folder: report, budget and plot each under 600 MB and within 1.15x of their 5,000-char peak;
report under 3 s; grade under 1 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DERIVED = ("samples_meta.parquet",)  # what the verbs may add to a run folder; a cold report starts without it


def write_folder(root: Path, chars: int, problems: int, samples: int) -> Path:
    """One graded synthetic run folder whose texts are about ``chars`` characters long (kept if present)."""
    done = root / f"chars{chars}" / "READY"
    if done.exists():
        return Path(done.read_text().strip())
    shutil.rmtree(done.parent, ignore_errors=True)
    from m1eval.rundir.synthetic import make_synthetic_run

    path = make_synthetic_run(
        done.parent,
        task="math500",
        model="synthetic-r1",
        n_problems=problems,
        n_samples=samples,
        accuracy=0.6,
        seed=25,
        tokens_per_sample=4000,
        max_tokens=32768,
        batch_size=256,
        text_chars=chars,
    )
    done.write_text(str(path))
    return path


def verbs(run: Path, scratch: Path) -> list[tuple[str, list[str]]]:
    return [
        ("report (cold)", ["report", str(run)]),
        ("report (warm)", ["report", str(run)]),
        ("budget", ["budget", str(run)]),
        ("plot --figure all", ["plot", str(run), "--figure", "all", "--out", str(scratch / "figures")]),
        ("grade (re-grade)", ["grade", str(run)]),
    ]


def measure(args: list[str], code: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code) of ``python -m m1eval ARGS`` run from
    ``code``; CPU is user + system time of the verb and the workers it reaped, which a shared
    machine's other work inflates less than the wall time."""
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "200"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "m1eval", *args], cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stderr = child.stderr.read() if child.stderr else b""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        print(
            f"  {' '.join(args[:1])} failed ({child.returncode}): {stderr.decode(errors='replace')[-400:]}",
            file=sys.stderr,
        )
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True, help="where the synthetic run folders are written (kept)")
    parser.add_argument("--chars", type=int, nargs="+", default=[5000, 20000], help="text lengths (default 5000 20000)")
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        help="checkout whose m1eval the verbs run (default: this one); give it twice (before, after) for a "
        "column of each, measured in turns",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each verb per checkout; the fastest counts")
    parser.add_argument("--only", nargs="*", help="measure only these verbs (report, budget, plot, grade)")
    args = parser.parse_args()
    codes: list[Path] = args.code or [REPO]
    results: dict[tuple[str, int, Path], tuple[float, float, float, int]] = {}
    sizes: dict[int, float] = {}
    names: list[str] = []
    for chars in args.chars:
        run = write_folder(args.folder, chars, args.problems, args.samples)
        sizes[chars] = (run / "samples.jsonl").stat().st_size / 1e6
        for name, verb in verbs(run, args.folder / f"chars{chars}"):
            if args.only and name.split()[0] not in args.only:
                continue
            if name not in names:
                names.append(name)
            for _ in range(args.repeat):
                for code in codes:  # in turns, so a busy spell of the machine hits every checkout alike
                    if name == "report (cold)":
                        for derived in DERIVED:
                            (run / derived).unlink(missing_ok=True)
                    wall, cpu, peak, rc = measure(verb, code)
                    best = results.get((name, chars, code))
                    if best is None or (rc == 0 and wall < best[0]):
                        results[name, chars, code] = (wall, cpu, peak, rc)
                    print(
                        f"  {chars:>6} chars  {name:<18} {wall:7.2f} s  {cpu:7.2f} s CPU  {peak:7.0f} MB  {code}"
                        + (f"  (exit {rc})" if rc else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    print(f"folders: {args.problems} problems x {args.samples} samples, graded; fastest of {args.repeat} run(s)")
    print("samples.jsonl: " + ", ".join(f"{c:,} chars {sizes[c]:.0f} MB" for c in args.chars))
    for i, code in enumerate(codes):
        print(f"code {chr(65 + i)}: {code}")
    columns = [(chars, code) for chars in args.chars for code in codes]
    named = len(codes) > 1
    header = "| verb | " + " | ".join(
        f"{c:,} chars" + (f" ({chr(65 + codes.index(code))})" if named else "") for c, code in columns
    )
    ratio = len(args.chars) > 1
    if ratio:
        header += " | " + " | ".join(
            f"ratio {args.chars[-1]:,}/{args.chars[0]:,}" + (f" ({chr(65 + i)})" if named else "") + " (time, peak)"
            for i in range(len(codes))
        )
    print(header + " |")
    print("|---" * (len(columns) + 1 + (len(codes) if ratio else 0)) + "|")
    for name in names:
        cells = []
        for chars, code in columns:
            wall, cpu, peak, rc = results[name, chars, code]
            cells.append(f"{wall:.1f} s ({cpu:.1f} s CPU), {peak:.0f} MB" + (f" (exit {rc})" if rc else ""))
        if ratio:
            for code in codes:
                (w0, _, p0, _), (w1, _, p1, _) = results[name, args.chars[0], code], results[name, args.chars[-1], code]
                cells.append(f"{w1 / w0:.2f}x, {p1 / p0:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
