"""One meaning per flag across verbs (issue 12, point 3), read from the registered commands.

A short flag or a shared long flag that meant two things in two verbs (``-o`` output file in
``report`` and engine option in ``run``; ``-f`` figure in ``plot`` and format in ``report``;
``-t`` task in ``run`` and tolerance in ``check``) is the kind of surprise this guards against.
"""

from __future__ import annotations

from collections import defaultdict

import typer.main

from m1eval.cli import app

# Flags whose help must agree wherever they appear (after the verb-specific prefix).
SAME_HELP = ("--profile", "--clock", "--batch-size", "--tokens-per-sample", "--metric", "--length-aware", "--lengths",
             "--resamples", "--engine-option", "--data-dir", "--allow-unpinned", "--verbose", "--extraction", "--level")


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
        kinds = {(param.multiple, param.is_flag, (param.help or '').split(' Default:')[0], param.min, param.max) for _, param in uses}
        assert len(kinds) == 1, f"{flag} has types {kinds} across {[verb for verb, _ in uses]}"


def test_no_verb_imports_another() -> None:
    import ast
    from pathlib import Path

    import m1eval.commands as commands

    folder = Path(commands.__file__).parent
    verbs = {p.stem for p in folder.glob("*.py")} - {"__init__", "common"}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                assert not (parts[:2] == ["m1eval", "commands"] and len(parts) > 2 and parts[2] in verbs), \
                    f"{path.name} imports the verb module {node.module}"
