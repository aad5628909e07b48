"""Library errors name parameters as the library names them, not as the CLI spells its flags.

A notebook user calling ``plan_run`` or ``bench`` has no ``--k`` to pass; the CLI's flags are
the same names with dashes (``data_dir`` is ``--data-dir``), so a CLI user still finds them.
Every ``raise`` outside ``m1eval/cli/`` is checked, string pieces of f-strings included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "m1eval"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
OTHER_TOOLS = ("ray start --head", "pip install --no-deps")  # commands of other programs, quoted as such


def flags_in_raises(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        for piece in ast.walk(node.exc):
            if isinstance(piece, ast.Constant) and isinstance(piece.value, str):
                text = piece.value
                for tool in OTHER_TOOLS:
                    text = text.replace(tool, "")
                found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {m}" for m in FLAG.findall(text)]
    return found


def test_no_library_error_names_a_cli_flag():
    paths = [p for p in sorted(PACKAGE.rglob("*.py")) if "cli" not in p.relative_to(PACKAGE).parts]
    assert paths
    offenders = [hit for p in paths for hit in flags_in_raises(p)]
    assert offenders == []


def test_the_check_sees_a_flag_in_an_f_string(tmp_path):
    module = tmp_path / "m1eval" / "bad.py"
    module.parent.mkdir()
    module.write_text('def f(k):\n    raise ValueError(f"--k must be >= 1, got {k}")\n', encoding="utf-8")
    global PACKAGE
    saved, PACKAGE = PACKAGE, module.parent
    try:
        assert [h.split(": ")[1] for h in flags_in_raises(module)] == ["--k"]
    finally:
        PACKAGE = saved
