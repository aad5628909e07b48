"""Helper for the M1-in-vLLM tests: the plugin's entry point (the comparison is ``m1eval.hybrid.vllm_plugin.agreement``).

The entry point: ``pip install -e .`` (CI) registers ``vllm.general_plugins: m1`` from
pyproject.toml. A development checkout whose installed metadata predates the plugin lacks it;
``ensure_plugin_entry_point`` then writes a throwaway ``*.dist-info`` holding only that entry
point into a temp folder and puts the folder on ``sys.path`` and ``PYTHONPATH`` (vLLM's own
subprocesses and the CLI's read it there), so the tests still load the plugin the way vLLM
does, through ``importlib.metadata`` and not by calling ``register()``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from m1eval.engines.vllm import PLUGIN_GROUP, PLUGIN_TARGET, plugin_registered


def ensure_plugin_entry_point(folder: Path) -> None:
    if plugin_registered():
        return
    info = folder / "m1eval_vllm_plugin_local-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: m1eval-vllm-plugin-local\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\nm1 = {PLUGIN_TARGET}\n")
    sys.path.insert(0, str(folder))
    repo = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), repo, os.environ.get("PYTHONPATH")) if p)
    importlib.invalidate_caches()
    assert plugin_registered()
