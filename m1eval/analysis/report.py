"""Run summaries and their rendering as table, markdown, LaTeX, CSV or JSON.

``summarize_run`` turns a loaded run into numbers only (``RunSummary``); ``render_report``
turns summaries and comparisons into text. Keeping the two apart lets ``m1eval run``
print the same summary after generation that ``m1eval report`` prints later, and lets
notebooks take the numbers without parsing text.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from m1eval.analysis import intervals as BS
from m1eval.analysis.comparable import Difference
from m1eval.analysis.metrics import REGISTRY, avg_at_n, k_grid, metric_info, metric_names
from m1eval.rundir.rundata import RunData

FORMATS = ("table", "markdown", "latex", "csv", "json")


@dataclass
class RunSummary:
    """Everything a report shows about one run."""

    path: str
    task: str
    model: str
    run_id: str
    n: int
    n_problems: int
    missing_problems: int
    pass1: float
    pass1_se: float
    pass1_low: float
    pass1_high: float
    curves: dict[str, BS.CurveCI]
    no_answer_rate: float
    truncation_rate: float
    mean_tokens: float
    p95_tokens: float
    samples: int
    warnings: list[str] = field(default_factory=list)
    unpinned: bool = False  # generated on rows that fail the task's pin: not comparable with pinned results
    # share of all graded samples whose answer each extraction rule found (m1eval.grading.extract)
    extracted_by: dict[str, float] = field(default_factory=dict)
    # problems.jsonl against the hashes recorded at generation (m1eval.rundir.golds): verified,
    # modified (an edited gold or question: the numbers are not the run's) or unverified (older runs)
    problems_check: str = "unverified"
    modified_problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model}/{self.run_id}"

    @property
    def modified(self) -> bool:
        return self.problems_check == "modified"


def unpinned_note(manifest: dict) -> str | None:
    """Why a run's rows are not the pinned ones, or None when they are (or the manifest cannot tell).

    Runs record ``task.unpinned``; older manifests stored the pin's hash as ``content_hash``
    and the rows' own hash as ``subset_hash``, which differ for a full (every row, no --limit) unpinned run.
    """
    task = manifest.get("task")
    if not isinstance(task, dict):
        return None
    if task.get("unpinned"):
        return (
            f"generated on unpinned rows of {task.get('name')} (sha256 {str(task.get('content_hash'))[:12]}…, "
            f"pin {str(task.get('pinned_hash'))[:12]}…): not comparable with pinned results"
        )
    full_run = task.get("limit") is None and task.get("problems") == task.get("rows")  # not a chosen subset
    if (
        "unpinned" not in task
        and full_run
        and task.get("subset_hash")
        and task.get("content_hash")
        and task["subset_hash"] != task["content_hash"]
    ):
        return f"generated on rows of {task.get('name')} whose hash differs from the pin: not comparable with pinned results"
    return None


def summarize_run(
    run: RunData,
    *,
    sign_flips: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    every_k: bool = False,
    metrics: Sequence[str] | None = None,
    on_step: Callable[[str], None] | None = None,
    target: str = "population",
) -> RunSummary:
    """Point estimates and intervals of ``metrics`` (default: every registered one) at k = 1, 2, 4, ... n.

    Scored metrics (best-of, weighted vote) appear only when completions carry
    ``scores["score"]``. ``on_step`` is called after each metric (for progress bars).
    ``target`` is the intervals' target (``m1eval.analysis.intervals.interval_curve``): "fixed"
    exists for pass@k and avg@n only, so ``metrics`` must then be ("pass",).
    """
    metrics = list(REGISTRY) if metrics is None else list(metrics)
    no_fixed = sorted({m for m in metrics if not metric_info(m).fixed_set})
    if target == "fixed" and no_fixed:
        fixed = " and ".join(metric_info(m).label for m in metric_names(fixed_set=True))
        raise ValueError(
            f"a fixed-set interval exists for {fixed} and avg@n only, not {no_fixed}; use target 'population'"
        )
    problems = BS.ProblemSet.from_frame(run.frame, run.scores())
    if len(problems) == 0:
        raise ValueError(f"{run.path}: no graded samples to summarise")
    ks = k_grid(problems.n, every_k)
    curves: dict[str, BS.CurveCI] = {}
    for metric in BS.available_metrics(problems, metrics):
        curves[metric] = BS.interval_curve(
            problems, ks, metric, sign_flips=sign_flips, seed=seed, level=level, target=target
        )
        if on_step:
            on_step(metric)
    accuracy = np.array([c.mean() for c in problems.correct])
    mean, se = avg_at_n(accuracy)
    pass_curve = curves.get("pass") or BS.interval_curve(
        problems, [1], "pass", sign_flips=sign_flips, seed=seed, level=level, target=target
    )
    tokens = run.samples["completion_tokens"].to_numpy(dtype=float)
    answered = run.frame["cluster"].notna() & run.frame["answer"].notna()
    unpinned = unpinned_note(run.manifest)
    return RunSummary(
        path=str(run.path),
        task=run.task,
        model=run.model,
        run_id=run.run_id,
        n=problems.n,
        n_problems=len(problems),
        missing_problems=len(run.missing_problems),
        pass1=mean,
        pass1_se=se,
        pass1_low=float(pass_curve.low[0]),
        pass1_high=float(pass_curve.high[0]),
        curves=curves,
        no_answer_rate=float(1.0 - answered.mean()) if len(answered) else math.nan,
        truncation_rate=float((run.samples["finish_reason"] == "length").mean()) if len(run.samples) else math.nan,
        mean_tokens=float(tokens.mean()) if tokens.size else math.nan,
        p95_tokens=float(np.percentile(tokens, 95)) if tokens.size else math.nan,
        samples=len(run.frame),
        warnings=list(run.warnings) + ([f"{run.label}: {unpinned}"] if unpinned else []),
        unpinned=unpinned is not None,
        extracted_by=_rule_shares(run.frame),
        problems_check=run.problems_check.state,
        modified_problems=list(run.problems_check.modified),
    )


def _rule_shares(frame: pd.DataFrame) -> dict[str, float]:
    """Share of samples whose answer each extraction rule found ('none': no rule found one)."""
    if "extracted_by" not in frame or not len(frame):
        return {}
    counts = frame["extracted_by"].fillna("none").value_counts()
    return {str(rule): float(count / len(frame)) for rule, count in counts.items()}


def compare_runs(
    runs: Sequence[RunData],
    *,
    baseline: int = 0,
    sign_flips: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    on_step: Callable[[str], None] | None = None,
) -> list[BS.Comparison]:
    """Each run against ``runs[baseline]``: pass@1, pass@kmax and maj@kmax, paired by problem id.

    kmax is the largest power of two both runs can supply.
    """
    base = runs[baseline]
    base_set = BS.ProblemSet.from_frame(base.frame)
    out: list[BS.Comparison] = []
    for i, run in enumerate(runs):
        if i == baseline:
            continue
        other = BS.ProblemSet.from_frame(run.frame)
        shared = [pid for pid in other.ids if pid in set(base_set.ids)]
        if not shared:
            raise ValueError(f"{run.path} and baseline {base.path} share no problem ids")
        n = min(other.subset(shared).n, base_set.subset(shared).n)
        kmax = k_grid(n)[-1]
        pairs = [("pass", 1)] + ([("pass", kmax), ("maj", kmax)] if kmax > 1 else [("maj", 1)])
        for metric, k in pairs:
            out.append(
                BS.paired_comparison(
                    other,
                    base_set,
                    metric,
                    k,
                    names=(run.label, base.label),
                    sign_flips=sign_flips,
                    seed=seed,
                    level=level,
                )
            )
            if on_step:
                on_step(f"{run.label} {metric}@{k}")
    return out


# ---------------------------------------------------------------------------- tables


def _pct(x: float) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def _ci(value: float, low: float, high: float) -> str:
    if not np.isfinite(low):
        return _pct(value)
    return f"{_pct(value)} [{_pct(low)}, {_pct(high)}]"


def runs_frame(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    rows = []
    for s in summaries:
        rows.append(
            {
                "task": _task_cell(s),
                "model": s.model,
                "run": s.run_id,
                "n": s.n,
                "problems": s.n_problems
                if not s.missing_problems
                else f"{s.n_problems} (+{s.missing_problems} missing)",
                "pass@1 % [95% CI]": _ci(s.pass1, s.pass1_low, s.pass1_high) + f" ±{_pct(s.pass1_se)} se",
                "no answer %": _pct(s.no_answer_rate),
                "answer found by %": ", ".join(f"{rule} {_pct(share)}" for rule, share in s.extracted_by.items())
                or "-",
                "truncated %": _pct(s.truncation_rate),
                "mean tokens": f"{s.mean_tokens:.0f}",
                "p95 tokens": f"{s.p95_tokens:.0f}",
            }
        )
    return pd.DataFrame(rows)


def _task_cell(s: RunSummary) -> str:
    """The task, marked when the run's numbers are not comparable: 'aime25 (UNPINNED, MODIFIED)'."""
    marks = [mark for mark, on in (("UNPINNED", s.unpinned), ("MODIFIED", s.modified)) if on]
    return f"{s.task} ({', '.join(marks)})" if marks else s.task


def curves_frame(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    ks = sorted({int(k) for s in summaries for c in s.curves.values() for k in c.ks})
    rows = []
    for s in summaries:
        for metric, curve in s.curves.items():
            row = {"model": s.model, "run": s.run_id, "metric": metric_info(metric).label}
            at = {int(k): i for i, k in enumerate(curve.ks)}
            for k in ks:
                i = at.get(k)
                row[f"k={k}"] = "-" if i is None else _ci(curve.point[i], curve.low[i], curve.high[i])
            rows.append(row)
    return pd.DataFrame(rows)


def comparisons_frame(comparisons: Sequence[BS.Comparison]) -> pd.DataFrame:
    rows = []
    for c in comparisons:
        rows.append(
            {
                "run": c.a,
                "baseline": c.b,
                "metric": metric_info(c.metric).label_at(c.k),
                "run %": _pct(c.value_a),
                "baseline %": _pct(c.value_b),
                "diff % [95% CI]": f"{100 * c.diff:+.1f} [{100 * c.low:+.1f}, {100 * c.high:+.1f}]",
                "p": "-" if not np.isfinite(c.p_value) else f"{c.p_value:.3g}",
                "problems": c.n_problems,
            }
        )
    return pd.DataFrame(rows)


def long_frame(
    summaries: Sequence[RunSummary],
    comparisons: Sequence[BS.Comparison] = (),
    differences: Sequence[Difference] = (),
) -> pd.DataFrame:
    """Tidy numbers (one row per run, metric and k) for CSV and notebooks.

    Each setting the compared runs differ in (``m1eval.analysis.comparable``) is a row of its
    own: metric ``differs:<setting>``, no value, the runs' values in ``note``.
    """
    parts = []
    for s in summaries:
        for curve in s.curves.values():
            frame = curve.to_frame()
            frame.insert(0, "run", s.run_id)
            frame.insert(0, "model", s.model)
            frame.insert(0, "task", s.task)
            frame["n"] = s.n
            frame["problems"] = s.n_problems
            frame["problems_check"] = s.problems_check
            frame["modified_problems"] = ";".join(s.modified_problems)
            parts.append(frame)
        extra = {
            "avg@n": (s.pass1, s.pass1_low, s.pass1_high, s.pass1_se),
            "no_answer_rate": (s.no_answer_rate, math.nan, math.nan, math.nan),
            "truncation_rate": (s.truncation_rate, math.nan, math.nan, math.nan),
            "mean_tokens": (s.mean_tokens, math.nan, math.nan, math.nan),
            "p95_tokens": (s.p95_tokens, math.nan, math.nan, math.nan),
            **{f"extracted_by_{rule}": (share, math.nan, math.nan, math.nan) for rule, share in s.extracted_by.items()},
        }
        parts.append(
            pd.DataFrame(
                [
                    {
                        "task": s.task,
                        "model": s.model,
                        "run": s.run_id,
                        "metric": name,
                        "k": s.n,
                        "value": v,
                        "ci_low": lo,
                        "ci_high": hi,
                        "se": se,
                        "n": s.n,
                        "problems": s.n_problems,
                        "problems_check": s.problems_check,
                        "modified_problems": ";".join(s.modified_problems),
                    }
                    for name, (v, lo, hi, se) in extra.items()
                ]
            )
        )
    for c in comparisons:
        parts.append(
            pd.DataFrame(
                [
                    {
                        "task": "",
                        "model": c.a,
                        "run": f"vs {c.b}",
                        "metric": f"diff_{c.metric}",
                        "k": c.k,
                        "value": c.diff,
                        "ci_low": c.low,
                        "ci_high": c.high,
                        "se": math.nan,
                        "p_value": c.p_value,
                        "problems": c.n_problems,
                    }
                ]
            )
        )
    if differences:
        parts.append(
            pd.DataFrame(
                [
                    {
                        "task": "",
                        "model": "",
                        "run": "",
                        "metric": f"differs:{d.key}",
                        "value": math.nan,
                        "note": d.text(),
                    }
                    for d in differences
                ]
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def groups_frame(groups: Sequence) -> pd.DataFrame:
    """One row per (run, group) of ``m1eval.analysis.breakdown.group_summaries``: pass@1, pass@k and
    maj@k at the group's largest power-of-two k, each with its interval, and the group's rates."""
    rows = []
    for g in groups:
        s = g.summary
        row = {"model": s.model, "run": s.run_id, g.key: g.group, "problems": s.n_problems, "n": s.n}
        pass_curve, maj_curve = s.curves.get("pass"), s.curves.get("maj")
        row["pass@1 % [95% CI]"] = _ci(s.pass1, s.pass1_low, s.pass1_high)
        if pass_curve is not None:
            row["k"] = int(pass_curve.ks[-1])
            row["pass@k % [95% CI]"] = _ci(pass_curve.point[-1], pass_curve.low[-1], pass_curve.high[-1])
        if maj_curve is not None:
            row["maj@k % [95% CI]"] = _ci(maj_curve.point[-1], maj_curve.low[-1], maj_curve.high[-1])
        row["no answer %"] = _pct(s.no_answer_rate)
        row["truncated %"] = _pct(s.truncation_rate)
        row["mean tokens"] = f"{s.mean_tokens:.0f}"
        rows.append(row)
    return pd.DataFrame(rows)


def groups_long_frame(groups: Sequence) -> pd.DataFrame:
    """``long_frame`` of every group's summary with its key and value in columns ``by`` and ``group``."""
    parts = []
    for g in groups:
        frame = long_frame([g.summary])
        frame.insert(3, "by", g.key)
        frame.insert(4, "group", g.group)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def differences_frame(differences: Sequence[Difference]) -> pd.DataFrame:
    return pd.DataFrame([{"setting": d.what, "the runs' values": d.text().split(": ", 1)[1]} for d in differences])


# ---------------------------------------------------------------------------- renderers


def _markdown(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "\\": r"\textbackslash{}",
}


def _tex(text: object) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text)).replace("±", r"$\pm$")


def _latex(frame: pd.DataFrame, caption: str) -> str:
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "l" * len(frame.columns) + "}",
        r"\toprule",
    ]
    lines.append(" & ".join(_tex(c) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_tex(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex(caption)}}}", r"\end{table}"]
    return "\n".join(lines)


def _rich(frame: pd.DataFrame, title: str, width: int = 200) -> str:
    """The ``table`` format: a rich table at ``width`` columns (cells fold to fit; 200 when the
    text goes to a file or a pipe, the terminal's width when a person reads it)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    console = Console(file=io.StringIO(), width=width, record=True, force_terminal=False)
    console.print(table)
    return console.export_text()


def _sections(
    summaries: Sequence[RunSummary],
    comparisons: Sequence[BS.Comparison],
    differences: Sequence[Difference] = (),
    groups: Sequence = (),
) -> list[tuple[str, pd.DataFrame]]:
    level = next((c.level for s in summaries for c in s.curves.values()), 0.95)
    sign_flips = next((c.sign_flips for s in summaries for c in s.curves.values()), 0)
    fixed = any(c.target == "fixed" for s in summaries for c in s.curves.values())
    what = "new samples of these problems (fixed set)" if fixed else "new problems (score interval)"
    note = f"{int(level * 100)}% CI for {what}, {sign_flips} sign flips" if sign_flips else "no intervals"
    sections = [
        (f"Runs (accuracy in %, {note})", runs_frame(summaries)),
        (f"Curves (% [{note}])", curves_frame(summaries)),
    ]
    if groups:
        key = groups[0].key
        sections.append(
            (
                f"By {key} (accuracy in %, {note}; k: the largest power of two the group's problems all have)",
                groups_frame(groups),
            )
        )
    if differences:
        sections.append(
            (
                "Comparability: the compared runs differ in these settings, so a difference below may come from them",
                differences_frame(differences),
            )
        )
    if comparisons:
        sections.append(
            (
                "Paired comparison against the baseline (problems matched by id; CI for new problems; sign-flip p-value)",
                comparisons_frame(comparisons),
            )
        )
    return sections


def render_report(
    summaries: Sequence[RunSummary],
    comparisons: Sequence[BS.Comparison] = (),
    fmt: str = "table",
    differences: Sequence[Difference] = (),
    groups: Sequence = (),
    width: int = 200,
) -> str:
    """The report as text in one of ``FORMATS``; ``differences`` (how the compared runs differ,
    ``m1eval.analysis.comparable.run_differences``) come above the comparison, ``groups``
    (``m1eval.analysis.breakdown.group_summaries`` of every run) after the curves."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "json":
        data = {
            "runs": [_summary_dict(s) for s in summaries],
            "differences": [d.to_dict() for d in differences],
            "comparisons": [asdict(c) for c in comparisons],
        }
        if groups:
            data["groups"] = [{"by": g.key, "group": g.group, **_summary_dict(g.summary)} for g in groups]
        return json.dumps(_finite(data), indent=2, default=_json_default)
    if fmt == "csv":
        frame = long_frame(summaries, comparisons, differences)
        if groups:
            frame = pd.concat([frame, groups_long_frame(groups)], ignore_index=True)
        return frame.to_csv(index=False)
    parts = []
    for title, frame in _sections(summaries, comparisons, differences, groups):
        if fmt == "markdown":
            parts.append(f"**{title}**\n\n{_markdown(frame)}")
        elif fmt == "latex":
            parts.append(_latex(frame, title))
        else:
            parts.append(_rich(frame, title, width))
    warnings = [w for s in summaries for w in s.warnings]
    if warnings and fmt != "latex":
        parts.append("Warnings:\n" + "\n".join(f"- {w}" for w in warnings))
    return "\n\n".join(parts) + "\n"


def _summary_dict(s: RunSummary) -> dict:
    data = asdict(s)
    data["curves"] = {
        m: {
            "ks": c.ks.tolist(),
            "value": c.point.tolist(),
            "ci_low": c.low.tolist(),
            "ci_high": c.high.tolist(),
            "se": c.se.tolist(),
            "level": c.level,
            "sign_flips": c.sign_flips,
            "target": c.target,
        }
        for m, c in s.curves.items()
    }
    return data


def _finite(value: object) -> object:
    """NaN/inf become null so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
