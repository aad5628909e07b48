"""Small helpers shared by the verbs: one-line errors and output paths checked before any work.

A verb that measures for an hour and then cannot write its result has lost the hour, so
every verb that writes checks its output paths first (``check_output_dir``,
``check_output_file``) and stops with one line naming the option and the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape


def error_line(console: Console, message: str) -> None:
    """``error: message`` on one line: not wrapped at the terminal width, markup in it shown as text."""
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def output_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a writable folder, or None when it can."""
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable"
        return None
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        return f"{base} is a file, so {path} cannot be created as a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"cannot create {path}: {base} is not writable"
    return None


def output_file_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path``, or None when it can."""
    if path.is_dir():
        return f"{path} is a folder, not a file"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    problem = output_dir_problem(path.absolute().parent)
    return None if problem is None else f"cannot write {path}: {problem}"


_stderr = Console(stderr=True)


def check_output_dir(path: Path | None, option: str) -> None:
    """Stop (exit 2, one line) before any work when ``option``'s folder could not be written."""
    if path is not None and (problem := output_dir_problem(Path(path))):
        error_line(_stderr, f"{option}: {problem}")
        raise typer.Exit(2)


def check_output_file(path: Path | None, option: str) -> None:
    """Stop (exit 2, one line) before any work when ``option``'s file could not be written."""
    if path is not None and (problem := output_file_problem(Path(path))):
        error_line(_stderr, f"{option}: {problem}")
        raise typer.Exit(2)
