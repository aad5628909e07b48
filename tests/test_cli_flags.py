"""One meaning per flag across verbs (issue 12, point 3), read from the registered commands.

A short flag or a shared long flag that meant two things in two verbs (``-o`` output file in
``report`` and engine option in ``run``; ``-f`` figure in ``plot`` and format in ``report``;
``-t`` task in ``run`` and tolerance in ``check``) is the kind of surprise this guards against.
"""

from __future__ import annotations

from collections import defaultdict

import typer.main

from m1eval.cli.app import app

# Flags whose help must agree wherever they appear (after the verb-specific prefix).
SAME_HELP = (
    "--profile",
    "--clock",
    "--batch-size",
    "--tokens-per-sample",
    "--metric",
    "--length-aware",
    "--lengths",
    "--sign-flips",
    "--engine-option",
    "--data-dir",
    "--allow-unpinned",
    "--verbose",
    "--extraction",
    "--level",
)


def _options_by_flag() -> dict[str, list[tuple[str, object]]]:
    """flag -> [(verb, click option)] for every option of every (sub)command."""
    found: dict[str, list[tuple[str, object]]] = defaultdict(list)
    group = typer.main.get_command(app)

    def walk(command, path: str) -> None:
        for param in command.params:
            for flag in [*param.opts, *getattr(param, "secondary_opts", [])]:
                found[flag].append((path, param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(group, "")
    return found


def test_every_short_flag_has_one_long_name() -> None:
    found = _options_by_flag()
    for flag, uses in found.items():
        if flag.startswith("--") or flag == "-h":
            continue
        longs = {tuple(sorted(o for o in param.opts if o.startswith("--"))) for _, param in uses}
        assert len(longs) == 1, f"{flag} means {sorted(longs)} in {[verb for verb, _ in uses]}"


def test_shared_flags_mean_the_same_everywhere() -> None:
    found = _options_by_flag()
    assert {verb for verb, _ in found["--engine-option"]} == {"run", "bench"}
    assert {verb for verb, _ in found["--profile"]} == {"budget", "plot"}
    for flag in SAME_HELP:
        uses = found.get(flag, [])
        assert uses, f"{flag} is on no verb"
        kinds = {
            (param.multiple, param.is_flag, (param.help or "").split(" Default:")[0], param.min, param.max)
            for _, param in uses
        }
        assert len(kinds) == 1, f"{flag} has types {kinds} across {[verb for verb, _ in uses]}"


def test_no_verb_imports_another() -> None:
    import ast
    from pathlib import Path

    import m1eval.cli as commands

    folder = Path(commands.__file__).parent
    verbs = {p.stem for p in folder.glob("*.py")} - {"__init__", "common"}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                assert not (parts[:2] == ["m1eval", "commands"] and len(parts) > 2 and parts[2] in verbs), (
                    f"{path.name} imports the verb module {node.module}"
                )


def test_level_means_the_confidence_level_in_every_verb_that_has_it(tmp_path) -> None:
    """--level 0.8 narrows the intervals of report, budget and the plot bands alike."""
    import json

    from typer.testing import CliRunner

    from m1eval.rundir.synthetic import make_synthetic_run

    found = _options_by_flag()
    assert {verb for verb, _ in found["--level"]} == {
        "report",
        "budget",
        "plot",
        "view",
    }  # view: tests/test_view_data.py
    run = make_synthetic_run(tmp_path / "runs", n_problems=12, n_samples=4, seed=5)
    widths = {}
    for level in ("0.8", "0.95"):
        out = tmp_path / f"budget-{level}"
        result = CliRunner().invoke(
            app,
            ["budget", str(run), "--level", level, "--sign-flips", "200", "--out", str(out)],
            env={"COLUMNS": "200"},
        )
        assert result.exit_code == 0, result.output
        assert f"{float(level) * 100:.3g}% CI" in result.output
        saved = json.loads((out / "budget.json").read_text())
        assert saved["settings"]["level"] == float(level)
        import pandas as pd

        curves = pd.read_csv(out / "budget_curves.csv")
        widths[level] = float((curves["ci_high"] - curves["ci_low"]).mean())
    assert widths["0.8"] < widths["0.95"]
    result = CliRunner().invoke(
        app,
        ["plot", str(run), "--figure", "passk", "--level", "0.8", "--sign-flips", "50", "--out", str(tmp_path / "fig")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    from m1eval.analysis.curves import metric_curve
    from m1eval.figures import plots
    from m1eval.rundir.rundata import load_run

    fig = plots.figure_metric([metric_curve(load_run(run), "pass", sign_flips=50, level=0.8)], level=0.8)
    assert fig.axes[0].get_title().endswith("pass@k, 80% CI")
