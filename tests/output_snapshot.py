"""Snapshot every table and figure the CLI and the notebook make from a fixed set of stored runs.

A refactor of the analysis or CLI layers must not change what a researcher gets from runs
already on disk. This script makes that checkable: ``inputs`` writes a fixed set of run
folders and a throughput profile once; ``snapshot`` runs ``report`` (every format, ``--by``,
``--per-problem``), ``budget --out``, ``plot`` (every figure, both sizes) and the notebook on them and keeps stdout and
every written file; two snapshots (before and after a change) are compared with
``compare``, which lists each file that differs (PNG figures compared pixel for pixel, so
only a visible change counts).

    python tests/output_snapshot.py inputs /tmp/snap/in
    python tests/output_snapshot.py snapshot /tmp/snap/in /tmp/snap/before
    ... change the code ...
    python tests/output_snapshot.py snapshot /tmp/snap/in /tmp/snap/after
    python tests/output_snapshot.py compare /tmp/snap/before /tmp/snap/after
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESAMPLES = "200"


def make_inputs(folder: Path, example: Path | None = None) -> None:
    """The notebook test's runs and profile (``tests/helpers/analysis_inputs.py``) plus the committed
    SmolLM2 example."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers.analysis_inputs import write_analysis_inputs

    from m1eval.models.tiny import shared_tiny_qwen2

    runs = folder / "runs"
    write_analysis_inputs(
        runs, shared_tiny_qwen2(folder / "models"), REPO.parent / "shared" / "data", folder / "profile.json"
    )
    example = example or REPO / "results" / "math500"
    if example.exists():
        shutil.copytree(example, runs / "math500")


def _cli(out: Path, name: str, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "m1eval", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    )
    (out / f"{name}.stdout").write_text(result.stdout)
    if result.returncode:
        (out / f"{name}.stderr").write_text(result.stderr)
    (out / f"{name}.rc").write_text(f"{result.returncode}\n")


def snapshot(inputs: Path, out: Path) -> None:
    runs, profile = inputs / "runs", inputs / "profile.json"
    out.mkdir(parents=True, exist_ok=True)
    for task in sorted(p.name for p in runs.iterdir() if p.is_dir()):  # a report compares runs of one task
        for fmt in ("table", "markdown", "latex", "csv", "json"):
            _cli(out, f"report-{task}-{fmt}", "report", str(runs / task), "--format", fmt, "--bootstrap", RESAMPLES)
    _cli(out, "report-synth-every-k", "report", str(runs / "synth"), "--format", "csv", "--every-k", "--level", "0.9")
    if (runs / "math500").exists():  # the committed example: its problems carry level and subject
        for key in ("level", "subject"):
            _cli(out, f"report-math500-by-{key}", "report", str(runs / "math500"), "--by", key, "-f", "markdown")
    for fmt in ("csv", "json"):
        _cli(out, f"report-per-problem-{fmt}", "report", str(runs), "--per-problem", "--format", fmt)
    _cli(
        out,
        "budget",
        "budget",
        str(runs),
        "--profile",
        str(profile),
        "--sign-flips",
        RESAMPLES,
        "--sequential",
        "--out",
        str(out / "budget"),
    )
    _cli(
        out,
        "budget-pass",
        "budget",
        str(runs / "synth"),
        "--metric",
        "pass",
        "--sign-flips",
        RESAMPLES,
        "--tokens-per-sample",
        "100",
        "--out",
        str(out / "budget-pass"),
    )
    for size in ("double", "single"):
        folder = "plot" if size == "double" else f"plot-{size}"
        _cli(
            out, folder, "plot", str(runs), "--profile", str(profile), "--sign-flips", RESAMPLES, "--size", size,
            "--out", str(out / folder),
        )  # fmt: skip
    sys.path.insert(0, str(REPO / "notebooks"))
    from execute import execute

    os.environ.update(
        M1EVAL_NB_RUNS=str(runs),
        M1EVAL_NB_PROFILES=str(profile),
        M1EVAL_NB_OUT=str(out / "notebook"),
        M1EVAL_NB_RESAMPLES=RESAMPLES,
    )
    notebook = execute(REPO / "notebooks" / "scaling_under_a_clock.py", workdir=out, timeout=300)
    printed = "".join(
        o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    (out / "notebook.stdout").write_text(printed)


def _same_image(a: Path, b: Path) -> bool:
    import matplotlib.image as mpimg
    import numpy as np

    first, second = mpimg.imread(a), mpimg.imread(b)
    return first.shape == second.shape and bool(np.array_equal(first, second))


def _normalised(text: str, root: Path) -> str:
    """Text with what legitimately differs between two snapshots made apart: the snapshot's own
    folder, and the source path and line of a warning."""
    text = text.replace(str(root), "OUT")
    return re.sub(r"\S*/(m1eval/\S+\.py):\d+", r"\1:LINE", text)


def compare(before: Path, after: Path) -> int:
    names = sorted(
        {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
        | {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    )
    differ = []
    for name in names:
        a, b = before / name, after / name
        if not (a.exists() and b.exists()):
            differ.append(f"{name}: only in {'before' if a.exists() else 'after'}")
        elif name.suffix == ".png":
            if not _same_image(a, b):
                differ.append(f"{name}: pixels differ")
        elif a.read_bytes() != b.read_bytes():
            try:
                same = _normalised(a.read_text(), before) == _normalised(b.read_text(), after)
            except UnicodeDecodeError:
                same = False
            if not same:
                differ.append(f"{name}: content differs")
    print(f"{len(names)} files compared, {len(differ)} differ")
    for line in differ:
        print("  " + line)
    return 1 if differ else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    inputs = sub.add_parser("inputs")
    inputs.add_argument("folder", type=Path)
    inputs.add_argument("--example", type=Path, help="the math500 results folder to include (default: results/math500)")
    snap = sub.add_parser("snapshot")
    snap.add_argument("inputs", type=Path)
    snap.add_argument("out", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.verb == "inputs":
        make_inputs(args.folder, args.example)
    elif args.verb == "snapshot":
        snapshot(args.inputs, args.out)
    else:
        raise SystemExit(compare(args.before, args.after))


if __name__ == "__main__":
    main()
