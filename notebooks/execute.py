"""Execute a jupytext notebook headless and save the executed ``.ipynb`` beside it.

    python notebooks/execute.py notebooks/scaling_under_a_clock.py [--out executed.ipynb]

Uses only jupytext + nbclient + ipykernel (no nbconvert/papermill); parameters reach
the notebook through ``M1EVAL_NB_*`` environment variables (see the notebook's first
cell). The tests call ``execute`` too, so CI runs exactly this path.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def execute(source: str | os.PathLike[str], *, workdir: str | os.PathLike[str] | None = None, timeout: int = 600):
    """Run every cell in a fresh ``python3`` kernel; raises ``CellExecutionError`` on the first failure."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(source)
    path = str(workdir or Path.cwd())
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path}}).execute()
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, help="Executed notebook (default: NOTEBOOK.ipynb next to the source).")
    parser.add_argument("--timeout", type=int, default=600, help="Seconds per cell.")
    args = parser.parse_args()
    import nbformat

    notebook = execute(args.notebook, timeout=args.timeout)
    out = args.out or args.notebook.with_suffix(".ipynb")
    nbformat.write(notebook, out)
    print(f"executed notebook written: {out}")


if __name__ == "__main__":
    main()
