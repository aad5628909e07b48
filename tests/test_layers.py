"""The folder listing is the architecture: packages import one way, bottom up.

Every ``import`` in every module counts, also those inside functions (a lazy import is
still a dependency), except under ``if TYPE_CHECKING:``. ``m1eval/__main__.py`` is the
entry point and sits above everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "m1eval"

# bottom up; a unit may import only itself and units listed before it
LAYERS = (
    "records",  # record types every layer shares
    "hub",  # hub access, offline switch
    "tasks",
    "rundir",
    "grading",
    "hybrid",
    "models",
    "engines",
    "throughput",
    "analysis",
    "figures",
    "view",
    "pipeline",
    "cli",
)


def unit_of(module: str) -> str:
    """``m1eval.analysis.budget.clock`` -> ``analysis``; ``m1eval.records`` -> ``records``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported m1eval module) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "m1eval":
            if node.module == "m1eval":  # from m1eval import analysis, __version__
                found += [(node.lineno, f"m1eval.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "m1eval"]
    return found


def layer_violations(package: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent)
        if relative.as_posix() == "m1eval/__main__.py":
            continue
        module = ".".join(relative.with_suffix("").parts)
        here = unit_of(module) if relative.name != "__init__.py" or len(relative.parts) > 2 else ""
        if here and here not in LAYERS:
            problems.append(f"{relative}: package {here!r} is not in LAYERS (place it in the order)")
            continue
        for line, imported in imports_of(path):
            there = unit_of(imported)
            if there in ("", "__version__") or there == here:
                continue
            if there not in LAYERS:
                problems.append(f"{relative}:{line}: imports {imported}, which is not in LAYERS")
            elif here == "" or LAYERS.index(there) > LAYERS.index(here):
                problems.append(f"{relative}:{line}: {here or 'm1eval'} imports the higher {imported}")
    return problems


def test_packages_import_bottom_up():
    assert layer_violations() == []


def test_the_root_holds_only_shared_records_and_packages():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "hub.py", "records.py"]
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), packages - set(LAYERS)


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        (
            "analysis/bad.py",
            "from m1eval.cli.progress import make_progress\n",
            "analysis imports the higher m1eval.cli",
        ),
        (
            "rundir/bad.py",
            "def f():\n    from m1eval.pipeline import runner\n",
            "rundir imports the higher m1eval.pipeline",
        ),
        ("grading/bad.py", "import m1eval.figures.plots\n", "grading imports the higher m1eval.figures"),
        ("records.py", "from m1eval import analysis\n", "records imports the higher m1eval.analysis"),
    ],
)
def test_a_wrong_import_is_caught(tmp_path: Path, where: str, source: str, expected: str):
    """The checker itself: a deliberately wrong import in a copy of the package is reported."""
    fake = tmp_path / "m1eval"
    for unit in LAYERS:
        (fake / unit).mkdir(parents=True, exist_ok=True)
        (fake / unit / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / where).write_text(source)
    assert any(expected in problem for problem in layer_violations(fake)), layer_violations(fake)


def test_a_lazy_import_under_type_checking_is_allowed(tmp_path: Path):
    fake = tmp_path / "m1eval"
    (fake / "engines").mkdir(parents=True)
    (fake / "engines" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from m1eval.cli import app\n"
    )
    assert layer_violations(fake) == []
